// ONNX Runtime (npm onnxruntime-node) driven by bench/compare.py over stdin/stdout.
//
//   node ort_runner.js --ort DIR --model M.onnx --threads N
//
// DIR is the folder whose node_modules holds onnxruntime-node. The session uses
// intraOpNumThreads N, interOpNumThreads 1, graphOptimizationLevel 'all' (as PERF.md says).
// Commands, one a line; each answer is one JSON line ({"error": "..."} on failure):
//   input PATH.npy     the input tensor for the next runs (float32 or int64, C order)
//   output PATH.npy    run once, write the first output as float32 .npy -> {"shape": [...]}
//   run K              K timed runs -> {"times_ms": [...]}
//   quit
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['ort', 'model', 'threads'])
    if (!(k in out)) throw new Error(`missing --${k}`);
  return out;
}

// .npy version 1/2/3, little-endian float32 or int64, C order.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape || /'fortran_order':\s*True/.test(header)) throw new Error(`${file}: unsupported header ${header}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const body = buf.subarray(start);
  const copy = (Ctor, size) => {
    if (body.length !== count * size) throw new Error(`${file}: ${body.length} data bytes for ${count} elements`);
    const ab = new ArrayBuffer(count * size);
    new Uint8Array(ab).set(body);
    return new Ctor(ab);
  };
  if (descr[1] === '<f4') return { type: 'float32', data: copy(Float32Array, 4), dims };
  if (descr[1] === '<i8') return { type: 'int64', data: copy(BigInt64Array, 8), dims };
  throw new Error(`${file}: dtype ${descr[1]} (expected <f4 or <i8)`);
}

function writeNpyF32(file, data, dims) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
  fs.renameSync(tmp, file);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = require(path.join(path.resolve(args.ort), 'node_modules', 'onnxruntime-node'));
  const session = await ort.InferenceSession.create(args.model, {
    intraOpNumThreads: Number(args.threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
  });
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  let feeds = null;
  const send = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
  send({ ready: true, input: inputName, output: outputName });

  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    const [cmd, ...rest] = line.trim().split(/\s+/);
    const arg = rest.join(' ');
    try {
      if (cmd === 'quit') break;
      if (cmd === 'input') {
        const t = readNpy(arg);
        feeds = { [inputName]: new ort.Tensor(t.type, t.data, t.dims) };
        send({ ok: true });
      } else if (cmd === 'output' || cmd === 'run') {
        if (!feeds) throw new Error('no input set');
        if (cmd === 'output') {
          const out = (await session.run(feeds))[outputName];
          writeNpyF32(arg, out.data, out.dims);
          send({ shape: out.dims });
        } else {
          const times = [];
          for (let i = 0; i < Number(arg); ++i) {
            const t0 = process.hrtime.bigint();
            await session.run(feeds);
            times.push(Number(process.hrtime.bigint() - t0) / 1e6);
          }
          send({ times_ms: times });
        }
      } else {
        throw new Error(`unknown command '${cmd}'`);
      }
    } catch (e) {
      send({ error: String(e && e.message ? e.message : e) });
    }
  }
  process.exit(0);
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.message ? e.message : e) }) + '\n');
  process.exit(1);
});
