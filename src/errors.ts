/**
 * Typed errors. Every error a user can see names the file (when there is one) and the problem.
 * `code` is stable and machine-readable; the message is for people.
 */
/**
 * Errors are one line (the CLI prints them as such and logs grep them): line breaks inside a message
 * — a quoted snippet of a pretty-printed JSON file, a native message — are shown as `\n`.
 */
export function oneLine(message: string): string {
  return message.replace(/\r\n|\r|\n/g, '\\n');
}

export class CoreMLOptimizeError extends Error {
  readonly code: string;
  readonly file: string | undefined;
  constructor(code: string, message: string, options: { file?: string; cause?: unknown } = {}) {
    super(oneLine(options.file ? `${options.file}: ${message}` : message), options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.file = options.file;
  }
}

/** The file is not a valid Core ML model / package / weight file (truncated, corrupt, wrong layout). */
export class ModelFormatError extends CoreMLOptimizeError {
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super('EMODELFORMAT', message, options);
  }
}

/** A weight blob is missing, out of range, or of the wrong type. */
export class WeightFileError extends CoreMLOptimizeError {
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super('EWEIGHTS', message, options);
  }
}

/** A configuration key or value is not allowed. */
export class ConfigError extends CoreMLOptimizeError {
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super('ECONFIG', message, options);
  }
}

/** The model uses something this operation or deployment target does not support. */
export class UnsupportedError extends CoreMLOptimizeError {
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super('EUNSUPPORTED', message, options);
  }
}

/** The native addon could not be loaded. */
export class NativeLoadError extends CoreMLOptimizeError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ENATIVELOAD', message, options);
  }
}

/** Raised when an AbortSignal cancels a long operation. */
export class AbortError extends CoreMLOptimizeError {
  constructor(message = 'The operation was aborted') {
    super('ABORT_ERR', message);
    this.name = 'AbortError';
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError();
}
