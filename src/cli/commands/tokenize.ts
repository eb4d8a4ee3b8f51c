import type { Command } from 'commander';
import { CLIPTokenizer } from '../../pipeline/tokenizer.js';

interface TokenizeOptions { tokenizer: string; padToken?: string; maxLength?: string; json?: boolean }

/** `coreml-optimize tokenize --tokenizer DIR [--pad-token T] [--json] [--] TEXT...`: CLIP token ids per text. */
export function registerTokenize(program: Command): void {
  program
    .command('tokenize')
    .description('CLIP BPE token ids of each TEXT (as transformers\' CLIPTokenizer: 77 ids with bos/eos, padded)')
    .argument('<text...>', 'prompts; put -- before a prompt that starts with "-"')
    .requiredOption('--tokenizer <dir>', 'folder with vocab.json and merges.txt (e.g. a diffusers tokenizer/ folder)')
    .option('--pad-token <token>', 'pad token: "<|endoftext|>" (default) or "!" (SDXL text_encoder_2)')
    .option('--max-length <n>', 'sequence length after truncation and padding', '77')
    .option('--json', 'print [{"text", "input_ids"}] as JSON')
    .action((texts: string[], opts: TokenizeOptions) => {
      const tok = CLIPTokenizer.fromDir(opts.tokenizer, {
        ...(opts.padToken !== undefined ? { padToken: opts.padToken } : {}),
        maxLength: Number(opts.maxLength),
      });
      const rows = texts.map(text => ({ text, input_ids: tok.encode(text) }));
      if (opts.json) {
        console.log(JSON.stringify(rows));
        return;
      }
      for (const [i, row] of rows.entries()) {
        const n = tok.untruncatedLength(texts[i]!);
        const note = n > tok.maxLength ? ` (truncated from ${n} tokens)` : '';
        console.log(`${JSON.stringify(row.text)}${note}\n  ${row.input_ids.join(' ')}`);
      }
    });
}
