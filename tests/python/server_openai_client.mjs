// The official `openai` npm client against `tern serve`: node server_openai_client.mjs
// NODE_MODULES_DIR BASE_URL MODEL INPUTS_JSON [API_KEY]. Prints one JSON object: the embeddings
// the client returned for encoding_format float, base64 (decoded here from the strings the client
// hands back) and the client's default (it asks for base64 and decodes itself), plus usage.
import { createRequire } from "node:module";
import path from "node:path";

const [modulesDir, baseURL, model, inputsJson, apiKey] = process.argv.slice(2);
const require = createRequire(path.join(modulesDir, "package.json"));
const OpenAI = require("openai").default ?? require("openai");

const client = new OpenAI({ baseURL, apiKey: apiKey || "unused", maxRetries: 0, timeout: 60000 });
const input = JSON.parse(inputsJson);

const asFloats = (b64) => {
  const buf = Buffer.from(b64, "base64");
  return Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
};

try {
  const f = await client.embeddings.create({ model, input, encoding_format: "float" });
  const b = await client.embeddings.create({ model, input, encoding_format: "base64" });
  const d = await client.embeddings.create({ model, input });
  console.log(JSON.stringify({
    float: f.data.map((e) => e.embedding),
    base64: b.data.map((e) => asFloats(e.embedding)),
    default: d.data.map((e) => Array.from(e.embedding)),
    index: f.data.map((e) => e.index),
    usage: f.usage,
    model: f.model,
  }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e), status: e.status ?? null }));
}
