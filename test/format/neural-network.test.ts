import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.js';
import { listNeuralNetworkWeights } from '../../src/format/neural-network.js';
import { decodeModel, encodeModel, neuralNetworkProtoRoot } from '../../src/format/proto.js';
import { loadModelSync } from '../../src/model.js';
import { FIXTURES } from './fixtures.js';

const fx = (p: string) => path.join(FIXTURES, p);
const product = (s: number[]) => s.reduce((a, b) => a * b, 1);

describe('listNeuralNetworkWeights on real models', () => {
  it('Keras MNIST conv net: 3 conv + 2 innerProduct, about 158 K fp32 weights', () => {
    const w = listNeuralNetworkWeights(loadModelSync(fx('mnist-keras-convnet/Jupyter/MNIST.mlmodel')).spec);
    expect(w.map((x) => `${x.layer}.${x.param}`)).toEqual([
      'conv2d_1.weights', 'conv2d_1.bias', 'conv2d_2.weights', 'conv2d_2.bias', 'conv2d_3.weights', 'conv2d_3.bias',
      'dense_1.weights', 'dense_1.bias', 'dense_2.weights', 'dense_2.bias',
    ]);
    expect(w[0]).toMatchObject({ layerType: 'convolution', dtype: 'float32', shape: [32, 1, 3, 3], count: 288, bytes: 1152 });
    expect(w[6]).toMatchObject({ layerType: 'innerProduct', dtype: 'float32', shape: [500, 288], count: 144000, bytes: 576000 });
    expect(w.reduce((a, x) => a + x.count, 0)).toBe(158086);
  });

  it('Apple MNISTClassifier (neuralNetworkClassifier): about 592 K fp32 weights', () => {
    const w = listNeuralNetworkWeights(loadModelSync(fx('apple-mnist-classifier/MNISTClassifier.mlmodel')).spec);
    expect(w.filter((x) => x.layerType === 'innerProduct' && x.param === 'weights')).toHaveLength(2);
    expect(w.every((x) => x.dtype === 'float32')).toBe(true);
    const total = w.reduce((a, x) => a + x.count, 0);
    expect(total).toBeGreaterThan(590_000);
    expect(total).toBeLessThan(600_000);
  });

  it('stored element counts agree with the shapes the layers declare (all NN fixtures)', () => {
    const files = [
      'mnist-keras-convnet/Jupyter/MNIST.mlmodel',
      'apple-mnist-classifier/MNISTClassifier.mlmodel',
      'tiny-drawing-embedding/examples/updatable_models/models/TinyDrawingEmbedding.mlmodel',
      'neural-mc-neural-net-custom-layer/NeuralMcNeuralNet.mlmodel',
      's4tf-updatable-linear/Models/s4tf_model_personalization.mlmodel',
    ];
    let n = 0;
    for (const f of files) {
      for (const x of listNeuralNetworkWeights(loadModelSync(fx(f)).spec)) {
        expect(x.shape, `${f} ${x.layer}.${x.param}`).toBeDefined();
        expect(x.count, `${f} ${x.layer}.${x.param}`).toBe(product(x.shape!));
        n++;
      }
    }
    expect(n).toBe(10 + 8 + 4 + 2 + listNeuralNetworkWeights(loadModelSync(fx(files[1]!)).spec).length);
    expect(listNeuralNetworkWeights(loadModelSync(fx(files[2]!)).spec).reduce((a, x) => a + x.count, 0)).toBe(97152);
  });

  it('models without weight layers give an empty list', () => {
    expect(listNeuralNetworkWeights(loadModelSync(fx('image2image-activation/CheckInputImage/Image2Image.mlmodel')).spec)).toEqual([]);
    expect(listNeuralNetworkWeights(loadModelSync(fx('coremltools-golden/src_a_ios18.mlpackage')).spec)).toEqual([]);
  });
});

describe('listNeuralNetworkWeights on synthetic encodings', () => {
  const NN = neuralNetworkProtoRoot().lookupType('CoreML.Specification.NeuralNetwork');
  const net = NN.encode({
    layers: [
      {
        name: 'fc16',
        innerProduct: { inputChannels: 3, outputChannels: 2, hasBias: true, weights: { float16Value: Buffer.alloc(12) }, bias: { floatValue: [1, 2] } },
      },
      {
        name: 'lut4',
        convolution: {
          outputChannels: 4, kernelChannels: 1, kernelSize: [1, 3],
          weights: { rawValue: Buffer.alloc(6), quantization: { numberOfBits: 4, lookupTableQuantization: { floatValue: new Array(16).fill(0) } } },
        },
      },
      { name: 'emb', embedding: { inputDim: 5, outputChannels: 2, weights: { rawValue: Buffer.alloc(10), quantization: { numberOfBits: 8, linearQuantization: { scale: [1], bias: [0] } } } } },
      { name: 'bn', batchnorm: { channels: 2, gamma: { floatValue: [1, 1] }, beta: { floatValue: [0, 0] }, mean: { floatValue: [0, 0] }, variance: { floatValue: [1, 1] } } },
    ],
  }).finish();

  it('reports dtype, shape, count and bytes per parameter', () => {
    const spec = decodeModel(encodeModel({ specificationVersion: 3, neuralNetwork: net }));
    const w = listNeuralNetworkWeights(spec);
    expect(w.map((x) => [x.layer, x.param, x.dtype, x.count, x.shape, x.bytes, x.quantization])).toEqual([
      ['fc16', 'weights', 'float16', 6, [2, 3], 12, undefined],
      ['fc16', 'bias', 'float32', 2, [2], 8, undefined],
      ['lut4', 'weights', 'quantized 4-bit', 12, [4, 1, 1, 3], 6, 'lookupTable'],
      ['emb', 'weights', 'quantized 8-bit', 10, [2, 5], 10, 'linear'],
      ['bn', 'gamma', 'float32', 2, [2], 8, undefined],
      ['bn', 'beta', 'float32', 2, [2], 8, undefined],
      ['bn', 'mean', 'float32', 2, [2], 8, undefined],
      ['bn', 'variance', 'float32', 2, [2], 8, undefined],
    ]);
  });

  it('walks into pipelines and names the sub-model', () => {
    const spec = decodeModel(
      encodeModel({ specificationVersion: 3, pipeline: { models: [{ specificationVersion: 3, glmClassifier: Buffer.alloc(0) }, { specificationVersion: 3, neuralNetworkClassifier: net }] } }),
    );
    const w = listNeuralNetworkWeights(spec);
    expect(w).toHaveLength(8);
    expect(w[0]!.model).toBe('pipeline.models[1]');
  });

  it('corrupt network bytes throw ModelFormatError', () => {
    const spec = { specificationVersion: 3, neuralNetwork: Buffer.from([0x0a, 0x50, 0x01]) };
    expect(() => listNeuralNetworkWeights(spec, 'bad.mlmodel')).toThrow(ModelFormatError);
  });
});
