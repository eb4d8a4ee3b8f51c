import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLIPTokenizer, basicClean } from '../../src/pipeline/tokenizer.js';
import { ConfigError, ModelFormatError } from '../../src/errors.js';
import { runCli } from '../cli/run-cli.js';
import { scratchDirs } from '../scratch.js';

const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared');
const CLIP_DIR = path.join(SHARED, 'tokenizers/clip-vit-l-14');
const REF = path.join(SHARED, 'fixtures/pipeline-reference');
const hasFixtures = fs.existsSync(path.join(REF, 'tokenizer')) && fs.existsSync(CLIP_DIR);

interface TokenizerCase { text: string; input_ids: number[]; untruncated_length: number; tokens: string[] }
const loadCases = (name: string): TokenizerCase[] => JSON.parse(fs.readFileSync(path.join(REF, 'tokenizer', name), 'utf8')) as TokenizerCase[];

describe.skipIf(!hasFixtures)('CLIPTokenizer against transformers (slow CLIPTokenizer, no ftfy)', () => {
  const tok = hasFixtures ? CLIPTokenizer.fromDir(CLIP_DIR) : undefined!;
  const bang = hasFixtures ? CLIPTokenizer.fromDir(CLIP_DIR, { padToken: '!' }) : undefined!;

  for (const [file, name] of [['tokenizer-cases.json', 'pad <|endoftext|>'], ['tokenizer-cases-pad-bang.json', 'pad "!"']] as const) {
    it(`every case of ${file} (${name}): input_ids, tokens, untruncated length`, () => {
      const t = file.includes('bang') ? bang : tok;
      const cases = loadCases(file);
      expect(cases.length).toBeGreaterThanOrEqual(20);
      for (const c of cases) {
        const label = JSON.stringify(c.text);
        expect(t.encode(c.text), label).toEqual(c.input_ids);
        expect(t.encode(c.text)).toHaveLength(77);
        expect(['<|startoftext|>', ...t.tokenize(c.text), '<|endoftext|>'], label).toEqual(c.tokens);
        expect(t.untruncatedLength(c.text), label).toBe(c.untruncated_length);
        expect(t.encodeUnpadded(c.text)).toHaveLength(c.untruncated_length);
      }
    });
  }

  it('the two apple/ml-stable-diffusion Swift test vectors', () => {
    expect(tok.encodeUnpadded('a photo of an astronaut riding a horse on mars'))
      .toEqual([49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407]);
    expect(tok.encodeUnpadded('Apple CoreML developer tools on a Macbook Air are fast'))
      .toEqual([49406, 3055, 19622, 5780, 10929, 5771, 525, 320, 20617, 1922, 631, 1953, 49407]);
  });

  it('pads with 49407, or with 0 for pad "!"; truncation keeps EOS at position 76', () => {
    expect(tok.padTokenId).toBe(49407);
    expect(bang.padTokenId).toBe(0);
    const ids = tok.encode('cat');
    expect(ids.slice(0, 3)).toEqual([49406, 2368, 49407]);
    expect(ids.slice(3).every(i => i === 49407)).toBe(true);
    expect(bang.encode('cat').slice(3).every(i => i === 0)).toBe(true);
    const long = Array.from({ length: 100 }, (_, i) => `w${i}`).join(' ');
    const truncated = tok.encode(long);
    expect(truncated).toHaveLength(77);
    expect(truncated[76]).toBe(49407);
    expect(truncated.slice(0, 76)).toEqual(tok.encodeUnpadded(long).slice(0, 76));
    expect(tok.untruncatedLength(long)).toBeGreaterThan(77);
  });

  it('"!" is a BPE token with pad <|endoftext|> and the special token 0 with pad "!"', () => {
    expect(tok.tokenize('hi!')).toEqual(['hi</w>', '!</w>']);
    expect(tok.encodeUnpadded('hi!')).toEqual([49406, 1883, 256, 49407]);
    expect(bang.tokenize('hi!')).toEqual(['hi</w>', '!']);
    expect(bang.encodeUnpadded('hi!')).toEqual([49406, 1883, 0, 49407]);
  });

  it('U+0345 is matched by no alternative of the IGNORECASE pattern in Python, so it only splits ("a\\u0345b" → a, b)', () => {
    expect(tok.tokenize('a\u0345b')).toEqual(['a</w>', 'b</w>']);
    expect(tok.tokenize('a\u00b2')).toEqual(['a</w>', 'Â²</w>']);
  });

  it('special tokens written in the prompt become their ids; the BPE cache gives the same answer twice', () => {
    expect(tok.encodeUnpadded('a<|endoftext|>b')).toEqual([49406, 320, 49407, 321, 49407]);
    expect(tok.encodeUnpadded('<|startoftext|>')).toEqual([49406, 49406, 49407]);
    const once = tok.encode('sprawling futuristic city');
    expect(tok.encode('sprawling futuristic city')).toEqual(once);
  });

  it('reads a diffusers tokenizer folder and takes its pad token from tokenizer_config.json', () => {
    const sd15 = CLIPTokenizer.fromDir(path.join(REF, 'models/tiny-sd15/tokenizer'));
    const xl2 = CLIPTokenizer.fromDir(path.join(REF, 'models/tiny-sdxl/tokenizer_2'));
    expect(sd15.padToken).toBe('<|endoftext|>');
    expect(xl2.padToken).toBe('!');
    const ids = JSON.parse(fs.readFileSync(path.join(REF, 'tokenizer/tokenizer-cases-pad-bang.json'), 'utf8'))[0].input_ids;
    expect(xl2.encode('cat in a tuxedo, oil on canvas')).toEqual(ids);
  });

  it('CLI: tokenize --json prints [{text, input_ids}] in argument order', async () => {
    const r = await runCli(['tokenize', '--tokenizer', CLIP_DIR, '--pad-token', '!', '--json', '--', 'wow!', '--not-an-option', '']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { text: string; input_ids: number[] }[];
    expect(out.map(o => o.text)).toEqual(['wow!', '--not-an-option', '']);
    expect(out[0]!.input_ids).toEqual(bang.encode('wow!'));
    expect(out[0]!.input_ids.slice(0, 4)).toEqual([49406, 2781, 0, 49407]);
    expect(out[1]!.input_ids).toEqual(bang.encode('--not-an-option'));
    expect(out[2]!.input_ids).toEqual([49406, 49407, ...new Array(75).fill(0)]);
    const plain = await runCli(['tokenize', '--tokenizer', CLIP_DIR, 'a photo']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.split('\n')[1]).toContain('49406 320 1125 49407');
    const missing = await runCli(['tokenize', '--tokenizer', path.join(os.tmpdir(), 'no-such-tokenizer-dir'), 'x']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no-such-tokenizer-dir');
  });
});

describe('BasicTokenizer cleaning (no ftfy)', () => {
  it('drops control and format characters, maps whitespace to spaces, spaces CJK ideographs, keeps accents', () => {
    expect(basicClean('zero\u200bwidth\u0007 a\u00a0b\tc\r\nd')).toBe('zerowidth a b c d');
    expect(basicClean('東京タワー')).toBe('東 京 タワー');
    expect(basicClean('  Crème  BRÛLÉE ')).toBe('crème brûlée');
    expect(basicClean('e\u0301')).toBe('é'); // NFC
    expect(basicClean('x\u0000y\ufffdz')).toBe('xyz');
    expect(basicClean('')).toBe('');
  });
});

describe('CLIPTokenizer file errors', () => {
  const scratch = scratchDirs('cmo-tok-');
  const tmp = (files: Record<string, string>) => {
    const dir = scratch();
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
  };
  const vocab = JSON.stringify({ a: 0, 'a</w>': 1, '<|startoftext|>': 2, '<|endoftext|>': 3 });

  it('missing folder / vocab.json / merges.txt → ConfigError naming the file', () => {
    expect(() => CLIPTokenizer.fromDir('/no/such/dir')).toThrow(ConfigError);
    const noMerges = tmp({ 'vocab.json': vocab });
    expect(() => CLIPTokenizer.fromDir(noMerges)).toThrow(/merges\.txt.*not found/);
    const noVocab = tmp({ 'merges.txt': '#version: 0.2\na b\n' });
    expect(() => CLIPTokenizer.fromDir(noVocab)).toThrow(/vocab\.json.*not found/);
  });

  it('malformed files → ModelFormatError naming the file and the problem', () => {
    expect(() => CLIPTokenizer.fromDir(tmp({ 'vocab.json': '{', 'merges.txt': '#version: 0.2\n' }))).toThrow(ModelFormatError);
    expect(() => CLIPTokenizer.fromDir(tmp({ 'vocab.json': '{"a": -1}', 'merges.txt': '#version: 0.2\n' }))).toThrow(/vocab\.json.*non-negative/);
    expect(() => CLIPTokenizer.fromDir(tmp({ 'vocab.json': vocab, 'merges.txt': 'a b\n' }))).toThrow(/merges\.txt.*#version/);
    expect(() => CLIPTokenizer.fromDir(tmp({ 'vocab.json': vocab, 'merges.txt': '#version: 0.2\na b c\n' }))).toThrow(/merges\.txt line 2/);
  });

  it('a pad token missing from the vocabulary or a bad maxLength → ConfigError', () => {
    const dir = tmp({ 'vocab.json': vocab, 'merges.txt': '#version: 0.2\n' });
    expect(() => CLIPTokenizer.fromDir(dir, { padToken: '!' })).toThrow(/pad token "!" is not in vocab\.json/);
    expect(() => CLIPTokenizer.fromDir(dir, { maxLength: 1 })).toThrow(ConfigError);
    const t = CLIPTokenizer.fromDir(dir, { maxLength: 4 });
    expect(t.encode('a a a')).toEqual([2, 1, 1, 3]);
    expect(t.encode('')).toEqual([2, 3, 3, 3]);
    expect(t.encode('b')).toEqual([2, 3, 3, 3]); // unknown → unk (<|endoftext|>)
  });
});
