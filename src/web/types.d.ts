// TypeScript types of the JS API's option objects, added to the generated .d.ts.
export interface LoadProgress { file: string; loaded: number; total: number; }
export interface LoadOptions {
  /** Called as bytes arrive: bytes loaded and expected so far, over all files. */
  onProgress?: (progress: LoadProgress) => void;
  /** Keep downloaded files in the Cache API (default true). */
  cache?: boolean;
  /** Weights on the GPU (linear layers, token embeddings, the LM head): "f16" halves their
   * memory, "int8" quarters it (one scale per row); arithmetic stays f32. Default: as the checkpoint stores them (int8 for
   * Firefox Translations models, f32 otherwise). */
  weights?: "f32" | "f16" | "int8";
  /** Use GPU buffers of at most this many bytes, as an adapter with that
   * maxStorageBufferBindingSize would allow: checks that a model fits a smaller device. */
  maxBufferBytes?: number;
}
export interface GenerateOptions {
  /** Most tokens to generate (default: the model's generation_config.json). */
  maxNewTokens?: number;
  maxLength?: number;
  /** At most ceil(factor × input tokens) new tokens (Marian's max-length-factor). */
  maxLengthFactor?: number;
  /** Cut an input longer than the model can place (keeping its last token) instead of failing. */
  truncation?: boolean;
  minNewTokens?: number;
  minLength?: number;
  numBeams?: number;
  numReturnSequences?: number;
  lengthPenalty?: number;
  earlyStopping?: boolean | "never";
  repetitionPenalty?: number;
  noRepeatNgramSize?: number;
  /** Log-softmax the scores again after every processor. */
  renormalizeLogits?: boolean;
  badWordsIds?: number[][];
  forcedBosTokenId?: number;
  forcedEosTokenId?: number | number[];
  suppressTokens?: number[];
  beginSuppressTokens?: number[];
  stopStrings?: string | string[];
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Makes sampling reproducible: the same seed gives the same text natively and here. */
  seed?: number;
  decoderStartTokenId?: number;
  eosTokenId?: number | number[];
  padTokenId?: number;
  /** The input's language, in the tokenizer's codes ("en_XX", "en", "eng_Latn"). */
  srcLang?: string;
  /** The language to generate, in the same codes. */
  tgtLang?: string;
  /** Called with each generated token id. */
  onToken?: (tokenId: number) => void;
  /** Aborting stops the generation; the iterator then rejects with an AbortError. */
  signal?: AbortSignal;
}
export interface GenerateManyOptions extends Omit<GenerateOptions, "onToken"> {
  /** Inputs decoded side by side (default: chosen from the model and the adapter). */
  batchSize?: number;
  /** Split each input into sentences, generate them one by one, and join the outputs back
   * with the input's spacing and line breaks. */
  splitSentences?: boolean;
  /** "continuous" (rows take the next input as soon as theirs ends; greedy without
   * processors), "static" (batches of similar lengths), or "auto" (the default: continuous
   * where it applies, static for models with a shortlist). Outputs are the same. */
  batching?: "auto" | "continuous" | "static";
}
/** One input's outcome: its text and ids (the best sequence) and every returned sequence,
 * or the error that kept it from being generated. */
export interface ManyResult {
  index: number;
  text?: string;
  ids?: number[];
  sequences?: number[][];
  error?: Error;
}
export interface LoadedFile { file: string; bytes: number; fromCache: boolean; }
