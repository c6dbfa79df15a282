// The minimal JS fetch around a bare wasm-bindgen export (bundler target).
import * as glue from "./pkg/bench_bare_bg.js";
import wasmModule from "./pkg/bench_bare_bg.wasm";

const instance = new WebAssembly.Instance(wasmModule, { "./bench_bare_bg.js": glue });
glue.__wbg_set_wasm(instance.exports);

export default {
  fetch() {
    return new Response(glue.hello(), {
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  },
};
