import * as tf from '@tensorflow/tfjs';

export interface AdamOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** coupled L2: adds 2*l2*w to the gradient of every variable `decayed` selects (= l2*sum(w^2) in the loss) */
  l2?: number;
  decayed?: (name: string) => boolean;
}

export interface AdamState {
  step: number;
  names: string[];
  /** first and second moments per variable, in `names` order */
  m: Float32Array[];
  v: Float32Array[];
}

/**
 * Adam (Kingma & Ba 2015) with the learning rate passed at every step, so a schedule
 * (cosine decay) needs no hook into optimizer internals, and with a state that can be
 * written to a checkpoint and read back for `--resume`.
 */
export class Adam {
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly l2: number;
  private readonly decayed: (name: string) => boolean;
  private m: tf.Variable[] = [];
  private v: tf.Variable[] = [];
  step = 0;

  constructor(
    private readonly vars: readonly { name: string; variable: tf.Variable }[],
    opts: AdamOptions = {},
  ) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-7;
    this.l2 = opts.l2 ?? 0;
    this.decayed = opts.decayed ?? ((name) => name.endsWith('/kernel'));
  }

  private ensureState(): void {
    if (this.m.length > 0) return;
    this.m = this.vars.map(({ variable }) => tf.variable(tf.zerosLike(variable), false));
    this.v = this.vars.map(({ variable }) => tf.variable(tf.zerosLike(variable), false));
  }

  /** One update with gradients in `vars` order (a missing gradient leaves its variable alone). */
  apply(grads: readonly (tf.Tensor | null)[], lr: number): void {
    if (grads.length !== this.vars.length) throw new RangeError(`expected ${this.vars.length} gradients, got ${grads.length}`);
    this.ensureState();
    this.step++;
    const b1t = 1 - this.beta1 ** this.step;
    const b2t = 1 - this.beta2 ** this.step;
    tf.tidy(() => {
      this.vars.forEach(({ name, variable }, i) => {
        let g = grads[i];
        if (g == null) return;
        if (this.l2 > 0 && this.decayed(name)) g = tf.add(g, tf.mul(2 * this.l2, variable));
        const m = tf.add(tf.mul(this.m[i], this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(this.v[i], this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const update = tf.div(tf.mul(m, lr / b1t), tf.add(tf.sqrt(tf.div(v, b2t)), this.epsilon));
        variable.assign(tf.sub(variable, update));
      });
    });
  }

  async getState(): Promise<AdamState> {
    this.ensureState();
    return {
      step: this.step,
      names: this.vars.map((v) => v.name),
      m: await Promise.all(this.m.map(async (t) => (await t.data()) as Float32Array)),
      v: await Promise.all(this.v.map(async (t) => (await t.data()) as Float32Array)),
    };
  }

  setState(state: AdamState): void {
    const names = this.vars.map((v) => v.name);
    if (state.names.length !== names.length || state.names.some((n, i) => n !== names[i])) {
      throw new RangeError('optimizer state does not match the model variables');
    }
    this.ensureState();
    tf.tidy(() => {
      this.vars.forEach(({ variable }, i) => {
        this.m[i].assign(tf.tensor(state.m[i], variable.shape));
        this.v[i].assign(tf.tensor(state.v[i], variable.shape));
      });
    });
    this.step = state.step;
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
    this.m = [];
    this.v = [];
  }
}
