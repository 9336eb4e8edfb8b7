// Adam on Float32Arrays, the same update as TF.js' AdamOptimizer (tf.train.adam):
//   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   w ← w − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε)
// In place on the weight arrays, so onnxruntime tensors that wrap them see the new values.

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  /** TF.js' default is its backend epsilon, 1e-7 for float32. */
  epsilon?: number;
}

export class Adam {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  learningRate: number;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  /** β1^t and β2^t after the steps taken so far (float32, as TF.js keeps them). */
  private accBeta1: number;
  private accBeta2: number;
  steps = 0;

  constructor(sizes: readonly number[], options: AdamOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-7;
    this.m = sizes.map((n) => new Float32Array(n));
    this.v = sizes.map((n) => new Float32Array(n));
    this.accBeta1 = Math.fround(this.beta1);
    this.accBeta2 = Math.fround(this.beta2);
  }

  /** One update of every weight from its gradient (same order as the sizes given). */
  apply(weights: readonly Float32Array[], grads: readonly Float32Array[]): void {
    const { beta1: b1, beta2: b2, epsilon: eps } = this;
    const c1 = 1 / Math.fround(1 - this.accBeta1);
    const c2 = 1 / Math.fround(1 - this.accBeta2);
    const lr = this.learningRate;
    const a1 = Math.fround(1 - b1);
    const a2 = Math.fround(1 - b2);
    for (let k = 0; k < weights.length; k++) {
      const w = weights[k];
      const g = grads[k];
      const m = this.m[k];
      const v = this.v[k];
      if (w.length !== g.length || w.length !== m.length) throw new Error(`adam: weight ${k} has ${w.length} values, gradient ${g.length}, state ${m.length}`);
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const mi = (m[i] = b1 * m[i] + a1 * gi);
        const vi = (v[i] = b2 * v[i] + a2 * gi * gi);
        w[i] -= (lr * (mi * c1)) / (Math.sqrt(vi * c2) + eps);
      }
    }
    this.accBeta1 = Math.fround(this.accBeta1 * b1);
    this.accBeta2 = Math.fround(this.accBeta2 * b2);
    this.steps++;
  }
}
