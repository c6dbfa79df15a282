// The empty JS worker: the cold-start anchor. Its start-up is workerd's own cost,
// which every other worker's increment is measured against.
export default {
  fetch() {
    return new Response("Hello from edgeway!");
  },
};
