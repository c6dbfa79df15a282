// The smallest possible JS worker: the zero point for cold-start increments.
export default {
  fetch() {
    return new Response("Hello from edgeway!");
  },
};
