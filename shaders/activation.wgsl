// Activation functions, selected at run time by an id so one pipeline serves every model.
// Ids must match `Activation::shader_id` in src/ops/activation.rs.
const ACT_NONE: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_GELU: u32 = 2u;
const ACT_GELU_TANH: u32 = 3u;
const ACT_SILU: u32 = 4u;

// erf has no WGSL builtin. Abramowitz & Stegun 7.1.26 has an absolute error of 1.5e-7,
// below f32 rounding of the values GELU produces, so "gelu" matches torch's erf form.
fn erf_approx(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-a * a);
    return select(y, -y, x < 0.0);
}

fn gelu_erf(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
}

// tanh overflows to NaN on some drivers for large arguments; tanh(±15) is ±1 in f32 anyway.
fn gelu_tanh(x: f32) -> f32 {
    let inner = 0.79788456080286536 * (x + 0.044715 * x * x * x);
    return 0.5 * x * (1.0 + tanh(clamp(inner, -15.0, 15.0)));
}

fn silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}

fn activate(x: f32, kind: u32) -> f32 {
    switch kind {
        case 1u: { return max(x, 0.0); }
        case 2u: { return gelu_erf(x); }
        case 3u: { return gelu_tanh(x); }
        case 4u: { return silu(x); }
        default: { return x; }
    }
}
