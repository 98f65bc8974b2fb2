// Hugging Face's CLIP tokenizer (tokenizers.js, the tokenizer of transformers.js) on a list of
// texts: prints a JSON array of id lists. Used by test_clip_tokenizer.py when installed.
//   NODE_PATH=DIR/node_modules node clip_hf_tokenizer.mjs DIR_WITH_TOKENIZER_JSON TEXTS.json
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';

const require = createRequire(import.meta.url);
const modules = process.env.NODE_PATH || '';
const entry = require.resolve('@huggingface/tokenizers', { paths: modules.split(':') });
const { Tokenizer } = await import(entry.replace(/tokenizers\.cjs$/, 'tokenizers.mjs'));

const dir = process.argv[2];
const texts = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
const tok = new Tokenizer(json, config);
process.stdout.write(JSON.stringify(texts.map((t) => Array.from(tok.encode(t).ids))));
