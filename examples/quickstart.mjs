// SPDX-License-Identifier: MIT
// The README's 30-second example, runnable: node examples/quickstart.mjs
import * as os from 'node:os';
import * as path from 'node:path';
import * as ws from 'weightsmith';

const here = path.dirname(new URL(import.meta.url).pathname);
const f = await ws.open(path.join(here, 'stories260K'));       // a file, an index.json, or a model folder
try {
  console.log(f.names().length, f.metadata.format);             // 47 pt
  const w = f.getTensor('model.layers.0.mlp.down_proj.weight');       // zero-copy view of the mapping
  console.log(w.dtype, w.shape, w.data[0].toFixed(4));          // f32 [ 64, 172 ] ...
  const half = await ws.convert(w, 'bf16');                     // native thread pool, off the main thread
  const out = path.join(os.tmpdir(), `down-${process.pid}.safetensors`);
  await ws.save(out, { down: half }, { metadata: { format: 'pt' } });  // atomic
  const back = ws.openSync(out);
  console.log(back.info('down'));                               // { dtype: 'bf16', shape: [ 64, 172 ], byteLength: 22016 }
  back.close();
} finally {
  f.close();                                                    // or: using f = await ws.open(...) in TypeScript
}
