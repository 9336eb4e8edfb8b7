// Model facts the UI, the hosts and the engine share: types only (the models package implements them).

/** How raw RGB pixels in [0, 255] become the backbone's input. */
export type Preprocessing =
  /** Keras "caffe": RGB→BGR, subtract the BGR ImageNet mean, no scaling. */
  | { mode: 'caffe'; mean: [number, number, number] }
  /** torchvision: x/255, then (x - mean) / std per RGB channel. */
  | { mode: 'torch'; mean: [number, number, number]; std: [number, number, number] }
  /** Keras "tf" (Xception, Inception): x/127.5 - 1. */
  | { mode: 'tf' };

/** The replaceable classification head on top of a backbone's feature vector. */
export type HeadConfig = { kind: 'linear' } | { kind: 'mlp'; hidden: number; dropout: number };
