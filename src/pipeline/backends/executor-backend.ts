/** The CPU executor as a pipeline backend (.mlpackage / .mlmodel ML Programs; not compiled .mlmodelc). */
import { UnsupportedError } from '../../errors.js';
import { loadModel } from '../../model.js';
import { halfBitsToFloatArray } from '../../mil/values.js';
import { createExecutor, type TensorInput } from '../../runtime/executor.js';
import { toInputType, type BackendPredictOptions, type BackendTensor, type FeatureSpec, type ModelBackend } from './types.js';

export async function loadExecutorBackend(file: string, options: { threads?: number } = {}): Promise<ModelBackend> {
  if (/\.mlmodelc\/?$/i.test(file)) {
    throw new UnsupportedError(
      'the CPU executor runs .mlpackage (or .mlmodel) files, not compiled .mlmodelc; use the .mlpackage outputs of the conversion, or --backend coreml on macOS',
      { file },
    );
  }
  const model = await loadModel(file);
  const executor = createExecutor(model);
  const inputs: FeatureSpec[] = executor.inputs.map((i) => ({ name: i.name, dtype: i.dtype, shape: i.shape }));
  const outputs: FeatureSpec[] = executor.outputs.map((o) => ({ name: o.name, dtype: o.dtype, shape: o.shape }));
  const threads = options.threads ?? 0;
  return {
    kind: 'executor',
    path: file,
    inputs,
    outputs,
    async predict(values: Record<string, BackendTensor>, predictOptions: BackendPredictOptions = {}) {
      const feed: Record<string, TensorInput> = {};
      for (const spec of inputs) {
        const v = values[spec.name];
        if (!v) continue; // the executor names the missing input
        const t = toInputType(v, spec.dtype);
        feed[spec.name] = { data: t.data, shape: t.shape, dtype: t.data instanceof Int32Array ? 'int32' : 'fp32' };
      }
      for (const name of Object.keys(values)) if (!(name in feed)) feed[name] = { data: values[name]!.data, shape: values[name]!.shape };
      const out = await executor.predict(feed, { threads, ...(predictOptions.signal ? { signal: predictOptions.signal } : {}) });
      const result: Record<string, BackendTensor> = {};
      for (const [name, t] of Object.entries(out)) {
        let data: Float32Array | Int32Array;
        if (t.dtype === 'fp16') data = halfBitsToFloatArray(t.data as Uint16Array);
        else if (t.dtype === 'int32') data = t.data as Int32Array;
        else if (t.dtype === 'fp32') data = t.data as Float32Array;
        else data = Float32Array.from(t.data as Uint8Array);
        result[name] = { data, shape: t.shape };
      }
      return result;
    },
  };
}
