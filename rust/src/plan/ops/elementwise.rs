//! Element-wise operators: arithmetic with broadcasting, unary math, IsNaN, Where, Cast,
//! Identity.

use super::attrs::Attrs;
use super::{broadcast, required, Kernel};
use crate::error::{Error, Result};
use crate::plan::tensor::{Data, ElemType, Strings, Tensor};

#[derive(Clone, Copy)]
enum Arithmetic {
    Add,
    Sub,
    Mul,
    Div,
}

struct Binary(Arithmetic);

pub fn arithmetic(op: &str) -> Result<Box<dyn Kernel>> {
    let op = match op {
        "Add" => Arithmetic::Add,
        "Sub" => Arithmetic::Sub,
        "Mul" => Arithmetic::Mul,
        _ => Arithmetic::Div,
    };
    Ok(Box::new(Binary(op)))
}

macro_rules! apply_arithmetic {
    ($op:expr, $a:expr, $b:expr) => {
        match $op {
            Arithmetic::Add => broadcast::zip($a, $b, |x, y| x + y),
            Arithmetic::Sub => broadcast::zip($a, $b, |x, y| x - y),
            Arithmetic::Mul => broadcast::zip($a, $b, |x, y| x * y),
            Arithmetic::Div => broadcast::zip($a, $b, |x, y| x / y),
        }
    };
}

impl Kernel for Binary {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [a, b] = required(inputs, "arithmetic")?;
        let (sa, sb) = (&a.shape[..], &b.shape[..]);
        let out = match (&a.data, &b.data) {
            (Data::F64(x), Data::F64(y)) => {
                let (shape, v) = apply_arithmetic!(self.0, (x, sa), (y, sb))?;
                Tensor::f64(shape, v)
            }
            (Data::F32(x), Data::F32(y)) => {
                let (shape, v) = apply_arithmetic!(self.0, (x, sa), (y, sb))?;
                Tensor::f32(shape, v)
            }
            (Data::I64(x), Data::I64(y)) => {
                if matches!(self.0, Arithmetic::Div) && y.contains(&0) {
                    return Err(Error::Model("integer division by zero".into()));
                }
                let (shape, v) = match self.0 {
                    Arithmetic::Add => broadcast::zip((x, sa), (y, sb), i64::wrapping_add),
                    Arithmetic::Sub => broadcast::zip((x, sa), (y, sb), i64::wrapping_sub),
                    Arithmetic::Mul => broadcast::zip((x, sa), (y, sb), i64::wrapping_mul),
                    Arithmetic::Div => broadcast::zip((x, sa), (y, sb), i64::wrapping_div),
                }?;
                Tensor::i64(shape, v)
            }
            _ => {
                return Err(Error::Model(format!(
                    "arithmetic on {} and {} tensors",
                    a.elem_type().name(),
                    b.elem_type().name()
                )))
            }
        };
        Ok(vec![out])
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum UnaryOp {
    Abs,
    Neg,
    Sigmoid,
    Exp,
    Log,
    Sqrt,
}

impl UnaryOp {
    /// The element-wise operator an ONNX operator name stands for.
    pub(crate) fn from_name(op: &str) -> Option<Self> {
        Some(match op {
            "Abs" => Self::Abs,
            "Neg" => Self::Neg,
            "Sigmoid" => Self::Sigmoid,
            "Exp" => Self::Exp,
            "Log" => Self::Log,
            "Sqrt" => Self::Sqrt,
            _ => return None,
        })
    }

    /// `apply` to every element of `x` into `out`, one loop per operator so that each loop
    /// vectorizes; the logistic function computes its exponentials first and finishes them
    /// in a second, vectorized pass, with `sigmoid`'s operations.
    #[inline(always)]
    pub(crate) fn apply_all(self, x: &[f64], out: &mut [f64]) {
        let pairs = out.iter_mut().zip(x);
        match self {
            Self::Sigmoid => {
                // A binary classifier's two scores are s and -s, whose exponentials are the
                // same: the last one is reused when the argument repeats (exactly: exp is a
                // function of its argument, and -0.0 and 0.0 both give 1.0).
                let (mut last, mut e) = (f64::NAN, f64::NAN);
                for (o, &x) in pairs {
                    let arg = if x >= 0.0 { -x } else { x };
                    if arg != last {
                        (last, e) = (arg, arg.exp());
                    }
                    *o = e;
                }
                for (o, &x) in out.iter_mut().zip(x) {
                    let e = *o;
                    *o = if x >= 0.0 {
                        1.0 / (1.0 + e)
                    } else {
                        e / (1.0 + e)
                    };
                }
            }
            Self::Abs => pairs.for_each(|(o, &x)| *o = x.abs()),
            Self::Neg => pairs.for_each(|(o, &x)| *o = -x),
            Self::Exp => pairs.for_each(|(o, &x)| *o = x.exp()),
            Self::Log => pairs.for_each(|(o, &x)| *o = x.ln()),
            Self::Sqrt => pairs.for_each(|(o, &x)| *o = x.sqrt()),
        }
    }

    pub(crate) fn apply(self, x: f64) -> f64 {
        match self {
            Self::Abs => x.abs(),
            Self::Neg => -x,
            Self::Sigmoid => sigmoid(x),
            Self::Exp => x.exp(),
            Self::Log => x.ln(),
            Self::Sqrt => x.sqrt(),
        }
    }
}

/// The logistic function in the form that does not overflow for large |x|.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

struct Unary(UnaryOp);

pub fn unary(op: &str) -> Result<Box<dyn Kernel>> {
    let op = UnaryOp::from_name(op).expect("ops::build routes only unary operators here");
    Ok(Box::new(Unary(op)))
}

impl Kernel for Unary {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "unary")?;
        let op = self.0;
        let data = match &x.data {
            Data::F64(v) => {
                let mut out = vec![0.0; v.len()];
                op.apply_all(v, &mut out);
                Data::F64(out)
            }
            // float32 math goes through f64 and rounds once: at least as exact as f32 math.
            Data::F32(v) => Data::F32(v.iter().map(|&x| op.apply(f64::from(x)) as f32).collect()),
            Data::I64(v) if matches!(op, UnaryOp::Abs) => {
                Data::I64(v.iter().map(|x| x.wrapping_abs()).collect())
            }
            Data::I64(v) if matches!(op, UnaryOp::Neg) => {
                Data::I64(v.iter().map(|x| x.wrapping_neg()).collect())
            }
            _ => {
                return Err(Error::Model(format!(
                    "element-wise math on a {} tensor",
                    x.elem_type().name()
                )))
            }
        };
        Ok(vec![Tensor::new(x.shape.clone(), data)])
    }
}

pub struct IsNan;

impl Kernel for IsNan {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "IsNaN")?;
        let flags = match &x.data {
            Data::F64(v) => v.iter().map(|x| x.is_nan()).collect(),
            Data::F32(v) => v.iter().map(|x| x.is_nan()).collect(),
            _ => return Err(Error::Model("IsNaN needs a float tensor".into())),
        };
        Ok(vec![Tensor::new(x.shape.clone(), Data::Bool(flags))])
    }
}

pub struct Where;

fn select<T: Copy>(
    c: (&[bool], &[usize]),
    x: (&[T], &[usize]),
    y: (&[T], &[usize]),
) -> Result<(Vec<usize>, Vec<T>)> {
    // The imputer's pattern, Where(IsNaN(X), fill, X) with one fill value per column, runs
    // row by row; anything else goes through general broadcasting.
    if c.1 == y.1 {
        let width = *c.1.last().unwrap_or(&1);
        if width > 0 && x.0.len() == width && x.1.last() == Some(&width) {
            let mut out = Vec::with_capacity(y.0.len());
            for (flags, values) in c.0.chunks_exact(width).zip(y.0.chunks_exact(width)) {
                out.extend(
                    flags
                        .iter()
                        .zip(values)
                        .zip(x.0)
                        .map(|((&flag, &value), &fill)| if flag { fill } else { value }),
                );
            }
            return Ok((c.1.to_vec(), out));
        }
    }
    let mut out = Vec::new();
    let shape = broadcast::for_each([c.1, x.1, y.1], |[i, j, k]| {
        out.push(if c.0[i] { x.0[j] } else { y.0[k] });
    })?;
    Ok((shape, out))
}

impl Kernel for Where {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [c, x, y] = required(inputs, "Where")?;
        let cond = (c.as_bool()?, &c.shape[..]);
        let out = match (&x.data, &y.data) {
            (Data::F64(a), Data::F64(b)) => {
                let (shape, v) = select(cond, (a, &x.shape), (b, &y.shape))?;
                Tensor::f64(shape, v)
            }
            (Data::F32(a), Data::F32(b)) => {
                let (shape, v) = select(cond, (a, &x.shape), (b, &y.shape))?;
                Tensor::f32(shape, v)
            }
            (Data::I64(a), Data::I64(b)) => {
                let (shape, v) = select(cond, (a, &x.shape), (b, &y.shape))?;
                Tensor::i64(shape, v)
            }
            (Data::Bool(a), Data::Bool(b)) => {
                let (shape, v) = select(cond, (a, &x.shape), (b, &y.shape))?;
                Tensor::new(shape, Data::Bool(v))
            }
            (Data::Str(a), Data::Str(b)) => {
                let parts = [a, b];
                let mut order = Vec::new();
                let shape =
                    broadcast::for_each([cond.1, &x.shape[..], &y.shape[..]], |[i, j, k]| {
                        order.push(if cond.0[i] { (0, j) } else { (1, k) });
                    })?;
                Tensor::new(shape, Data::Str(Strings::concat(&parts, order.into_iter())))
            }
            _ => {
                return Err(Error::Model(
                    "Where needs X and Y of one element type".into(),
                ))
            }
        };
        Ok(vec![out])
    }
}

pub struct Identity;

impl Kernel for Identity {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "Identity")?;
        Ok(vec![x.clone()])
    }

    fn run_owned(&self, first: Tensor, _: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        Ok(vec![first])
    }
}

pub struct Cast(ElemType);

pub fn cast(attrs: &Attrs) -> Result<Box<dyn Kernel>> {
    let to = attrs.int("to", 0);
    let target = i32::try_from(to)
        .ok()
        .and_then(ElemType::from_onnx)
        .ok_or_else(|| attrs.unsupported(format!("casts to ONNX element type {to}")))?;
    Ok(Box::new(Cast(target)))
}

impl Kernel for Cast {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "Cast")?;
        Ok(vec![cast_tensor(x, self.0)?])
    }

    fn run_owned(&self, first: Tensor, _: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        if first.elem_type() == self.0 {
            return Ok(vec![first]);
        }
        Ok(vec![cast_tensor(&first, self.0)?])
    }
}

/// Convert the elements of `x` to `to` with ONNX's rules: float to float rounds to nearest
/// (ties to even, like C++ and numpy), float to int truncates toward zero, strings parse.
pub fn cast_tensor(x: &Tensor, to: ElemType) -> Result<Tensor> {
    if x.elem_type() == to {
        return Ok(x.clone());
    }
    let data = match (to, &x.data) {
        (ElemType::F32, Data::F64(v)) => Data::F32(v.iter().map(|&x| x as f32).collect()),
        (ElemType::F64, Data::Str(s)) | (ElemType::F32, Data::Str(s)) => {
            let parsed = parse_table(s)?;
            let values: Vec<f64> = s.codes.iter().map(|&c| parsed[c as usize]).collect();
            if to == ElemType::F32 {
                Data::F32(values.iter().map(|&x| x as f32).collect())
            } else {
                Data::F64(values)
            }
        }
        (ElemType::F64, _) => Data::F64(x.to_f64()?),
        (ElemType::F32, _) => Data::F32(x.to_f64()?.into_iter().map(|x| x as f32).collect()),
        (ElemType::I64, Data::F64(v)) => Data::I64(v.iter().map(|&x| x as i64).collect()),
        (ElemType::I64, Data::F32(v)) => Data::I64(v.iter().map(|&x| x as i64).collect()),
        (ElemType::I64, Data::Bool(v)) => Data::I64(v.iter().map(|&x| i64::from(x)).collect()),
        (ElemType::Bool, Data::F64(v)) => Data::Bool(v.iter().map(|&x| x != 0.0).collect()),
        (ElemType::Bool, Data::F32(v)) => Data::Bool(v.iter().map(|&x| x != 0.0).collect()),
        (ElemType::Bool, Data::I64(v)) => Data::Bool(v.iter().map(|&x| x != 0).collect()),
        (ElemType::Str, Data::I64(v)) => {
            Data::Str(Strings::from_values(v.iter().map(i64::to_string).collect()))
        }
        _ => {
            return Err(Error::Model(format!(
                "cannot cast a {} tensor to {}",
                x.elem_type().name(),
                to.name()
            )))
        }
    };
    Ok(Tensor::new(x.shape.clone(), data))
}

/// Each table entry parsed once; an entry no row uses may fail without harm.
fn parse_table(s: &Strings) -> Result<Vec<f64>> {
    let parsed: Vec<Option<f64>> = s.table.iter().map(|v| v.trim().parse().ok()).collect();
    if let Some(&code) = s.codes.iter().find(|&&c| parsed[c as usize].is_none()) {
        return Err(Error::Model(format!(
            "cannot cast the string {:?} to a number",
            s.table[code as usize]
        )));
    }
    Ok(parsed.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

#[cfg(test)]
mod tests {
    use super::UnaryOp;

    #[test]
    fn apply_all_matches_apply_bit_for_bit() {
        let mut x = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            710.0,
            -710.0,
            1e-300,
            -1e-300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::NAN,
            3.25,
            3.25,
            -3.25,
        ];
        // Pairs s, -s as a binary classifier's scores come, and a pseudo-random spread.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let s = (seed >> 11) as f64 / (1u64 << 53) as f64 * 80.0 - 40.0;
            x.extend([s, -s]);
        }
        for op in [
            UnaryOp::Abs,
            UnaryOp::Neg,
            UnaryOp::Sigmoid,
            UnaryOp::Exp,
            UnaryOp::Log,
            UnaryOp::Sqrt,
        ] {
            let mut out = vec![0.0; x.len()];
            op.apply_all(&x, &mut out);
            for (&x, &got) in x.iter().zip(&out) {
                let want = op.apply(x);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{op:?}({x}) = {got}, want {want}"
                );
            }
        }
    }
}
