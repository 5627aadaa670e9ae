// rsocket-js 1.0.0-alpha.3 uses node's global `Buffer`; a browser has none. esbuild's --inject
// makes every free `Buffer` of the bundle this one (the `buffer` package from npm).
export { Buffer } from "buffer";
