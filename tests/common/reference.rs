//! Plain CPU implementations of every kernel, in f64 where it matters, as the tests' truth.

pub fn linear(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for t in 0..k {
                acc += x[i * k + t] as f64 * w[j * k + t] as f64;
            }
            out[i * n + j] = acc as f32 + bias.map_or(0.0, |b| b[j]);
        }
    }
    out
}

pub fn softmax(x: &[f32], cols: usize) -> Vec<f32> {
    x.chunks(cols)
        .flat_map(|row| {
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let exps: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.into_iter().map(move |e| (e / sum) as f32)
        })
        .collect()
}

pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<f32> {
    let cols = w.len();
    x.chunks(cols)
        .flat_map(|row| {
            let n = cols as f64;
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            let inv = 1.0 / (var + eps as f64).sqrt();
            row.iter()
                .enumerate()
                .map(move |(c, &v)| ((v as f64 - mean) * inv * w[c] as f64 + b[c] as f64) as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let cols = w.len();
    x.chunks(cols)
        .flat_map(|row| {
            let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / cols as f64;
            let inv = 1.0 / (ms + eps as f64).sqrt();
            row.iter()
                .enumerate()
                .map(move |(c, &v)| (w[c] as f64 * v as f64 * inv) as f32)
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn gelu_erf(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

pub fn gelu_tanh(x: f32) -> f32 {
    let x = x as f64;
    let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3));
    (0.5 * x * (1.0 + inner.tanh())) as f32
}

pub fn relu(x: f32) -> f32 {
    x.max(0.0)
}

pub fn silu(x: f32) -> f32 {
    let x = x as f64;
    (x / (1.0 + (-x).exp())) as f32
}

pub struct AttentionCase<'a> {
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub batch: usize,
    pub q_rows: usize,
    /// Rows of storage per batch item; only the first `kv_len` hold keys.
    pub kv_rows: usize,
    pub kv_len: usize,
    pub heads: usize,
    /// Key/value heads (grouped-query attention: heads / kv_heads query heads share one).
    pub kv_heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    /// Absolute position of query row 0 (queries follow `first_pos` cached keys).
    pub first_pos: usize,
    pub causal: bool,
    /// A sliding window: a causal query sees its `window` latest keys (itself included), a
    /// bidirectional one the keys at most `window` positions away.
    pub window: Option<usize>,
    /// Scores become cap * tanh(score / cap) before the bias and masks.
    pub softcap: Option<f32>,
    /// bias(head, q_pos, k_pos)
    pub bias: Option<&'a dyn Fn(usize, usize, usize) -> f32>,
    /// [batch, kv_rows], true keeps the key
    pub mask: Option<&'a [bool]>,
}

/// Dense attention, materialising the scores as transformers does.
pub fn attention(c: &AttentionCase) -> Vec<f32> {
    let w = c.heads * c.head_dim;
    let kv_w = c.kv_heads * c.head_dim;
    let group = c.heads / c.kv_heads;
    let kv_len = c.kv_len;
    let mut out = vec![0.0f32; c.batch * c.q_rows * w];
    for b in 0..c.batch {
        for h in 0..c.heads {
            for i in 0..c.q_rows {
                let q_pos = c.first_pos + i;
                let q = &c.q[(b * c.q_rows + i) * w + h * c.head_dim..][..c.head_dim];
                let mut scores = vec![f64::NEG_INFINITY; kv_len];
                for (j, s) in scores.iter_mut().enumerate() {
                    if c.causal && j > q_pos {
                        continue;
                    }
                    // T5Gemma's masks: causal, the `window` latest keys; bidirectional,
                    // keys at most `window` away.
                    let outside = match c.causal {
                        true => q_pos - j >= c.window.unwrap_or(usize::MAX),
                        false => j.abs_diff(q_pos) > c.window.unwrap_or(usize::MAX),
                    };
                    if outside {
                        continue;
                    }
                    if let Some(m) = c.mask
                        && !m[b * c.kv_rows + j]
                    {
                        continue;
                    }
                    let kh = h / group;
                    let k = &c.k[(b * c.kv_rows + j) * kv_w + kh * c.head_dim..][..c.head_dim];
                    let dot: f64 = q.iter().zip(k).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let mut score = dot * c.scale as f64;
                    if let Some(cap) = c.softcap {
                        score = (score / cap as f64).tanh() * cap as f64;
                    }
                    *s = score + c.bias.map_or(0.0, |f| f(h, q_pos, j) as f64);
                }
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if max == f64::NEG_INFINITY {
                    continue;
                }
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for d in 0..c.head_dim {
                    let mut acc = 0.0f64;
                    for (j, e) in exps.iter().enumerate() {
                        acc += e * c.v[(b * c.kv_rows + j) * kv_w + (h / group) * c.head_dim + d]
                            as f64;
                    }
                    out[(b * c.q_rows + i) * w + h * c.head_dim + d] = (acc / sum) as f32;
                }
            }
        }
    }
    out
}

pub fn argmax(x: &[f32], cols: usize) -> Vec<u32> {
    x.chunks(cols)
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best as u32
        })
        .collect()
}

/// SSRU over `tokens` rows of one sequence, from state `c`: returns relu(c) + x per row and
/// leaves the final state in `c`.
pub fn ssru(gates: &[f32], x: &[f32], c: &mut [f32], tokens: usize) -> Vec<f32> {
    let dim = c.len();
    let mut out = vec![0.0; tokens * dim];
    for t in 0..tokens {
        for j in 0..dim {
            let f = 1.0 / (1.0 + (-gates[t * 2 * dim + dim + j]).exp());
            c[j] = f * c[j] + (1.0 - f) * gates[t * 2 * dim + j];
            out[t * dim + j] = c[j].max(0.0) + x[t * dim + j];
        }
    }
    out
}
