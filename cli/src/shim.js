// edgeway's worker entry, written into build/index.js by `edgeway build`.
//
// It instantiates the module once per isolate and hands each event straight to
// the wasm export: one JS call in, one out to build the Response. (worker-build's
// default entry wraps a WorkerEntrypoint class in Proxies that run on every
// request; measured, that cost more than the whole edgeway dispatch.)
import * as imports from "./index_bg.js";
import wasmModule from "./index.wasm";
/*SNIPPET_IMPORTS*/
/*CLASS_IMPORTS*/

const instance = new WebAssembly.Instance(wasmModule, {
  "./index_bg.js": imports,
  /*SNIPPET_MODULES*/
});
imports.__wbg_set_wasm(instance.exports);
instance.exports.__wbindgen_start?.();

const handlers = {
  fetch(request, env, ctx) {
    // Method and URL go in as arguments: cheaper than the wasm asking for them.
    return imports.fetch(request, env, ctx, request.method, request.url);
  },
};
// Optional entry points, looked up by a computed name so the bundler does not
// warn about the ones a worker does not export.
for (const name of ["queue", "scheduled"]) {
  const handler = imports[name];
  if (typeof handler === "function") {
    handlers[name] = (event, env, ctx) => handler(event, env, ctx);
  }
}
export default handlers;
/*CLASSES*/
