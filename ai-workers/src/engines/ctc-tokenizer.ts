import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AiError } from '../errors.js';
import { pullHint, readJson } from '../models/model-folder.js';

/**
 * A Wav2Vec2CTCTokenizer's vocabulary read from vocab.json (or a fast
 * tokenizer's tokenizer.json), with its blank (the pad token) and word
 * delimiter from tokenizer_config.json / special_tokens_map.json.
 */
export class CtcTokenizer {
  private constructor(
    private readonly tokens: (string | undefined)[],
    readonly blankId: number,
    private readonly delimiter: string,
    private readonly special: Set<string>,
  ) {}

  get size(): number {
    return this.tokens.length;
  }

  static fromFolder(dir: string, model: string): CtcTokenizer {
    const vocab = readVocab(dir, model);
    const config = {
      ...(existsSync(join(dir, 'special_tokens_map.json')) ? (readJson(join(dir, 'special_tokens_map.json'), model) as Record<string, unknown>) : {}),
      ...(existsSync(join(dir, 'tokenizer_config.json')) ? (readJson(join(dir, 'tokenizer_config.json'), model) as Record<string, unknown>) : {}),
    };
    const tokenName = (value: unknown, fallback: string) =>
      typeof value === 'string' ? value : value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string' ? (value as { content: string }).content : fallback;
    const pad = tokenName(config.pad_token, vocab.has('<pad>') ? '<pad>' : '[PAD]');
    const blankId = vocab.get(pad);
    if (blankId === undefined) throw new AiError('AI_MODEL_INVALID', `model "${model}": the pad token ${pad} (CTC blank) is not in the vocabulary`);
    const delimiter = tokenName(config.word_delimiter_token, '|');
    const special = new Set([pad, tokenName(config.bos_token, '<s>'), tokenName(config.eos_token, '</s>'), tokenName(config.unk_token, '<unk>')]);
    const tokens: (string | undefined)[] = [];
    for (const [token, id] of vocab) tokens[id] = token;
    return new CtcTokenizer(tokens, blankId, delimiter, special);
  }

  /** Greedy CTC over the best token of each frame: repeats collapsed, blanks and special tokens dropped, the delimiter a space. */
  decodeIds(frameIds: readonly number[]): string {
    let text = '';
    let previous = -1;
    for (const id of frameIds) {
      if (id === previous) continue;
      previous = id;
      if (id === this.blankId) continue;
      const token = this.tokens[id];
      if (token === undefined || this.special.has(token)) continue;
      text += token === this.delimiter ? ' ' : token;
    }
    return text.replace(/\s+/g, ' ').trim();
  }
}

function readVocab(dir: string, model: string): Map<string, number> {
  let raw: unknown;
  if (existsSync(join(dir, 'vocab.json'))) raw = readJson(join(dir, 'vocab.json'), model);
  else if (existsSync(join(dir, 'tokenizer.json'))) raw = (readJson(join(dir, 'tokenizer.json'), model) as { model?: { vocab?: unknown } }).model?.vocab;
  else throw new AiError('AI_MODEL_MISSING', `model "${model}" has no vocab.json or tokenizer.json: ${pullHint(model, true)}`);
  // Multilingual fine-tunes nest the vocabulary by language ({"ja": {...}}); take the single one.
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const values = Object.values(raw);
    if (values.length > 0 && values.every((v) => v && typeof v === 'object') && values.length === 1) raw = values[0];
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new AiError('AI_MODEL_INVALID', `model "${model}": the vocabulary is not a token → id map`);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(raw)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new AiError('AI_MODEL_INVALID', `model "${model}": token ${JSON.stringify(token)} has no integer id`);
    vocab.set(token, id);
  }
  if (vocab.size === 0) throw new AiError('AI_MODEL_INVALID', `model "${model}": empty vocabulary`);
  return vocab;
}
