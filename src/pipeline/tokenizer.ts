/**
 * CLIP byte-level BPE tokenizer, equal to transformers' slow `CLIPTokenizer` as installed without `ftfy`
 * (the default): text is cleaned by BERT's BasicTokenizer (strip_accents=False, no punctuation split), lower-cased,
 * split by CLIP's regex, mapped byte → unicode, merged by BPE ranks, wrapped in <|startoftext|> … <|endoftext|>,
 * truncated to `maxLength` keeping the EOS, and padded with the pad token.
 *
 * Special tokens (bos, eos = unk, pad) are "added tokens" in transformers: they are cut out of the raw text before
 * any cleaning and become their own ids. With SDXL's second tokenizer the pad token is "!", so every "!" in a
 * prompt becomes token 0 (not the "!</w>" BPE token 256) — reproduced here on purpose.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, ModelFormatError } from '../errors.js';

export const CLIP_BOS_TOKEN = '<|startoftext|>';
export const CLIP_EOS_TOKEN = '<|endoftext|>';
export const CLIP_MAX_LENGTH = 77;

export interface CLIPTokenizerOptions {
  /**
   * Pad token: `<|endoftext|>` (SD 1.x, SDXL encoder 1) or `!` (SDXL encoder 2). Default: the `pad_token` of the
   * folder's tokenizer_config.json / special_tokens_map.json when there is one, else `<|endoftext|>`.
   */
  padToken?: string;
  /** Sequence length after truncation and padding (default 77). */
  maxLength?: number;
}

/** transformers' `bytes_to_unicode`: every byte gets a printable character, so BPE never sees spaces/controls. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCodePoint(256 + n++);
  }
  return table;
}
const BYTE_ENCODER = bytesToUnicode();

// CLIP's pre-tokenizer pattern. transformers compiles it with re.IGNORECASE, which changes nothing on lower-cased
// text except for U+0345 (combining ypogegrammeni, case-folds to a letter): Python's `regex` then matches it with
// no alternative, so it only separates tokens. Checked code point by code point against regex 2026.5 — the JS
// pattern without /i agrees everywhere else that survives the cleaning (U+0085 and U+FEFF are removed before).
const CLIP_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/gu;
const UNMATCHED_UNDER_IGNORECASE = /\u0345/g;
const CONTROL = /^\p{C}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;
// Python's str.split() separators (str.isspace): what BasicTokenizer's whitespace_tokenize splits on.
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** BERT `_is_control`: Unicode category C*, except tab, newline and carriage return. */
function isControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return CONTROL.test(ch);
}

function isWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || SPACE_SEPARATOR.test(ch);
}

/** BERT `_is_chinese_char`: the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana). */
function isCjkIdeograph(cp: number): boolean {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df)
    || (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf)
    || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

/**
 * BERT BasicTokenizer(do_lower_case=True, strip_accents=False, do_split_on_punc=False).tokenize(text), joined by
 * spaces: what CLIPTokenizer uses instead of ftfy. Checked against a Python transcription for every code point
 * (inside "A…b"): identical except for code points unassigned in Python 3's Unicode 14 tables but assigned in
 * Node's (Python drops unassigned "Cn" characters as control characters) — so it depends on the Python version too.
 */
export function basicClean(text: string): string {
  let cleaned = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
    if (isWhitespace(ch)) cleaned += ' ';
    else if (isCjkIdeograph(cp)) cleaned += ` ${ch} `;
    else cleaned += ch;
  }
  const words = cleaned.normalize('NFC').split(PY_WHITESPACE).filter(w => w.length > 0);
  return words.map(w => w.toLowerCase()).join(' ');
}

function readText(file: string, what: string): string {
  if (!existsSync(file)) throw new ConfigError(`${what} not found`, { file });
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${what}: ${(err as Error).message}`, { file, cause: err });
  }
}

function parseVocab(text: string, file: string): Map<string, number> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(`vocab.json is not valid JSON: ${(err as Error).message}`, { file, cause: err });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ModelFormatError('vocab.json must be an object of token → id', { file });
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new ModelFormatError(`vocab.json: id of token ${JSON.stringify(token)} is not a non-negative integer`, { file });
    }
    vocab.set(token, id);
  }
  if (vocab.size === 0) throw new ModelFormatError('vocab.json is empty', { file });
  return vocab;
}

/** transformers reads `merges.read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]`: header skipped, rank = index. */
const MAX_MERGES = 49152 - 256 - 2;

function parseMerges(text: string, file: string): Map<string, number> {
  const lines = text.trim().split('\n');
  if (lines.length < 1 || !lines[0]!.startsWith('#version')) {
    throw new ModelFormatError('merges.txt must start with a "#version" line', { file });
  }
  const ranks = new Map<string, number>();
  const end = Math.min(lines.length, MAX_MERGES + 1);
  for (let i = 1; i < end; i++) {
    const parts = lines[i]!.trim().split(/\s+/);
    if (parts.length !== 2) {
      throw new ModelFormatError(`merges.txt line ${i + 1}: expected two symbols, got ${JSON.stringify(lines[i])}`, { file });
    }
    const key = `${parts[0]} ${parts[1]}`;
    if (!ranks.has(key)) ranks.set(key, i - 1);
  }
  return ranks;
}

/** The pad token named by a diffusers/transformers tokenizer folder, if any. */
function configuredPadToken(dir: string): string | undefined {
  for (const name of ['tokenizer_config.json', 'special_tokens_map.json']) {
    const file = path.join(dir, name);
    if (!existsSync(file)) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ModelFormatError(`${name} is not valid JSON: ${(err as Error).message}`, { file, cause: err });
    }
    const pad = (raw as { pad_token?: unknown } | null)?.pad_token;
    if (typeof pad === 'string') return pad;
    if (pad && typeof pad === 'object' && typeof (pad as { content?: unknown }).content === 'string') {
      return (pad as { content: string }).content;
    }
  }
  return undefined;
}

export class CLIPTokenizer {
  readonly vocab: ReadonlyMap<string, number>;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padToken: string;
  readonly padTokenId: number;
  readonly maxLength: number;
  private readonly ranks: ReadonlyMap<string, number>;
  private readonly specialTokens: string[];
  private readonly cache = new Map<string, string[]>();

  /**
   * `vocab` maps token → id, `merges` maps "first second" → rank. `source` names where they came from, for errors.
   */
  constructor(vocab: Map<string, number>, merges: Map<string, number>, options: CLIPTokenizerOptions = {}, source = '<tokenizer>') {
    this.vocab = vocab;
    this.ranks = merges;
    const idOf = (token: string, role: string): number => {
      const id = vocab.get(token);
      if (id === undefined) throw new ConfigError(`${role} token ${JSON.stringify(token)} is not in vocab.json`, { file: source });
      return id;
    };
    this.bosTokenId = idOf(CLIP_BOS_TOKEN, 'start');
    this.eosTokenId = idOf(CLIP_EOS_TOKEN, 'end');
    this.padToken = options.padToken ?? CLIP_EOS_TOKEN;
    if (this.padToken.length === 0) throw new ConfigError('pad token must not be empty', { file: source });
    this.padTokenId = idOf(this.padToken, 'pad');
    const maxLength = options.maxLength ?? CLIP_MAX_LENGTH;
    if (!Number.isInteger(maxLength) || maxLength < 2) {
      throw new ConfigError(`maxLength must be an integer ≥ 2 (room for bos and eos), got ${maxLength}`, { file: source });
    }
    this.maxLength = maxLength;
    // Longest first, so a longer special token wins where two could start at the same place.
    this.specialTokens = [...new Set([CLIP_BOS_TOKEN, CLIP_EOS_TOKEN, this.padToken])].sort((a, b) => b.length - a.length);
  }

  /** Reads `vocab.json` and `merges.txt` from a tokenizer folder (CLIP ViT-L/14 files, or a diffusers `tokenizer/`). */
  static fromDir(dir: string, options: CLIPTokenizerOptions = {}): CLIPTokenizer {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfigError('tokenizer folder not found', { file: dir });
    const vocabFile = path.join(dir, 'vocab.json');
    const mergesFile = path.join(dir, 'merges.txt');
    const vocab = parseVocab(readText(vocabFile, 'vocab.json'), vocabFile);
    const merges = parseMerges(readText(mergesFile, 'merges.txt'), mergesFile);
    const padToken = options.padToken ?? configuredPadToken(dir);
    return new CLIPTokenizer(vocab, merges, { ...options, ...(padToken !== undefined ? { padToken } : {}) }, dir);
  }

  /** BPE of one pre-token (already byte-encoded); result cached per word. */
  private bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    if (token === CLIP_BOS_TOKEN || token === CLIP_EOS_TOKEN) return [token];
    let word = Array.from(token);
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      // The pair with the lowest rank; ties cannot happen (ranks are unique per pair).
      let best: string | undefined;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = `${word[i]} ${word[i + 1]}`;
        }
      }
      if (best === undefined) break;
      const space = best.indexOf(' ');
      const first = best.slice(0, space);
      const second = best.slice(space + 1);
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (word[i] === first && i + 1 < word.length && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    this.cache.set(token, word);
    return word;
  }

  /** Cuts the special tokens out of raw text, as transformers' added-tokens trie does before `_tokenize`. */
  private splitSpecial(text: string): { text: string; special: boolean }[] {
    const pieces: { text: string; special: boolean }[] = [];
    let start = 0;
    let i = 0;
    while (i < text.length) {
      const match = this.specialTokens.find(t => text.startsWith(t, i));
      if (match === undefined) {
        i++;
        continue;
      }
      if (i > start) pieces.push({ text: text.slice(start, i), special: false });
      pieces.push({ text: match, special: true });
      i += match.length;
      start = i;
    }
    if (start < text.length) pieces.push({ text: text.slice(start), special: false });
    return pieces;
  }

  /** The BPE tokens of `text` without bos/eos (transformers' `tokenizer.tokenize(text)`). */
  tokenize(text: string): string[] {
    const tokens: string[] = [];
    for (const piece of this.splitSpecial(text)) {
      if (piece.special) {
        tokens.push(piece.text);
        continue;
      }
      const cleaned = basicClean(piece.text).replace(UNMATCHED_UNDER_IGNORECASE, ' ');
      for (const match of cleaned.matchAll(CLIP_PATTERN)) {
        let encoded = '';
        for (const byte of Buffer.from(match[0], 'utf8')) encoded += BYTE_ENCODER[byte];
        tokens.push(...this.bpe(encoded));
      }
    }
    return tokens;
  }

  /** Token ids of a token list; unknown tokens become the unk token (= `<|endoftext|>`), as in transformers. */
  convertTokensToIds(tokens: string[]): number[] {
    return tokens.map(t => this.vocab.get(t) ?? this.eosTokenId);
  }

  /** [bos, …ids, eos] without truncation or padding; its length is transformers' untruncated length. */
  encodeUnpadded(text: string): number[] {
    return [this.bosTokenId, ...this.convertTokensToIds(this.tokenize(text)), this.eosTokenId];
  }

  /** `tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids`. */
  encode(text: string): number[] {
    const ids = this.convertTokensToIds(this.tokenize(text));
    const kept = ids.slice(0, this.maxLength - 2); // truncation keeps bos and eos
    const out = [this.bosTokenId, ...kept, this.eosTokenId];
    while (out.length < this.maxLength) out.push(this.padTokenId);
    return out;
  }

  /** Length of [bos, …tokens, eos] before truncation (> maxLength means the prompt was cut). */
  untruncatedLength(text: string): number {
    return this.tokenize(text).length + 2;
  }
}
