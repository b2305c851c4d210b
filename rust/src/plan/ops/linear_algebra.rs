//! Matrix products and per-row reductions: MatMul, Gemm, Softmax, ArgMax, ReduceSum.

use super::attrs::Attrs;
use super::shape::normalize_axis;
use super::{optional_i64, required, Context, Kernel};
use crate::error::{Error, Result};
use crate::plan::tensor::{Data, Tensor};

/// Float element types the products run in, each in its own precision like onnxruntime.
trait Float: Copy + Default + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> {
    fn from_f64(x: f64) -> Self;
}

impl Float for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

impl Float for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
}

/// `a` (n x k, element (i, p) at `a_at(i, p)`) times `b` (k x m, at `b_at(p, j)`).
fn product<T: Float>(
    n: usize,
    k: usize,
    m: usize,
    a_at: impl Fn(usize, usize) -> T,
    b_at: impl Fn(usize, usize) -> T,
) -> Vec<T> {
    let mut out = vec![T::default(); n * m];
    for i in 0..n {
        let row = &mut out[i * m..(i + 1) * m];
        for p in 0..k {
            let x = a_at(i, p);
            for (j, slot) in row.iter_mut().enumerate() {
                *slot = *slot + x * b_at(p, j);
            }
        }
    }
    out
}

pub struct MatMul;

fn matmul<T: Float>(
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
) -> Result<(Vec<usize>, Vec<T>)> {
    // A vector operand is a row (left) or a column (right) whose unit dimension is dropped.
    let (n, k) = match a_shape {
        [k] => (1, *k),
        [n, k] => (*n, *k),
        _ => {
            return Err(Error::Model(format!(
                "MatMul of a rank-{} tensor",
                a_shape.len()
            )))
        }
    };
    let (k2, m) = match b_shape {
        [k] => (*k, 1),
        [k, m] => (*k, *m),
        _ => {
            return Err(Error::Model(format!(
                "MatMul by a rank-{} tensor",
                b_shape.len()
            )))
        }
    };
    if k != k2 {
        return Err(Error::Model(format!(
            "MatMul of shapes {a_shape:?} and {b_shape:?}"
        )));
    }
    // Tabular graphs multiply many rows by a few weight columns: transpose the weights once so
    // every output is a dot product of two contiguous slices, summed in order.
    let columns: Vec<Vec<T>> = (0..m)
        .map(|j| (0..k).map(|p| b[p * m + j]).collect())
        .collect();
    let mut out = Vec::with_capacity(n * m);
    if k > 0 {
        for row in a.chunks_exact(k) {
            for column in &columns {
                out.push(dot(row, column));
            }
        }
    } else {
        out.resize(n * m, T::default());
    }
    let mut shape = Vec::new();
    if a_shape.len() == 2 {
        shape.push(n);
    }
    if b_shape.len() == 2 {
        shape.push(m);
    }
    Ok((shape, out))
}

fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    x.iter()
        .zip(y)
        .fold(T::default(), |sum, (&a, &b)| sum + a * b)
}

impl Kernel for MatMul {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [a, b] = required(inputs, "MatMul")?;
        let out = match (&a.data, &b.data) {
            (Data::F64(x), Data::F64(y)) => {
                let (shape, v) = matmul(x, &a.shape, y, &b.shape)?;
                Tensor::f64(shape, v)
            }
            (Data::F32(x), Data::F32(y)) => {
                let (shape, v) = matmul(x, &a.shape, y, &b.shape)?;
                Tensor::f32(shape, v)
            }
            _ => {
                return Err(Error::Model(
                    "MatMul needs two float tensors of one type".into(),
                ))
            }
        };
        Ok(vec![out])
    }
}

pub struct Gemm {
    alpha: f64,
    beta: f64,
    trans_a: bool,
    trans_b: bool,
}

pub fn gemm(attrs: &Attrs) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(Gemm {
        alpha: f64::from(attrs.float("alpha", 1.0)),
        beta: f64::from(attrs.float("beta", 1.0)),
        trans_a: attrs.int("transA", 0) != 0,
        trans_b: attrs.int("transB", 0) != 0,
    }))
}

impl Gemm {
    fn compute<T: Float>(
        &self,
        a: &[T],
        a_shape: &[usize],
        b: &[T],
        b_shape: &[usize],
        c: Option<(&[T], &[usize])>,
    ) -> Result<Tensor>
    where
        Tensor: FromFloats<T>,
    {
        let (&[ar, ac], &[br, bc]) = (a_shape, b_shape) else {
            return Err(Error::Model("Gemm needs two matrices".into()));
        };
        let (n, k) = if self.trans_a { (ac, ar) } else { (ar, ac) };
        let (k2, m) = if self.trans_b { (bc, br) } else { (br, bc) };
        if k != k2 {
            return Err(Error::Model(format!(
                "Gemm of shapes {a_shape:?} and {b_shape:?}"
            )));
        }
        let a_at = |i: usize, p: usize| {
            if self.trans_a {
                a[p * ac + i]
            } else {
                a[i * ac + p]
            }
        };
        let b_at = |p: usize, j: usize| {
            if self.trans_b {
                b[j * bc + p]
            } else {
                b[p * bc + j]
            }
        };
        let mut out = product(n, k, m, a_at, b_at);
        let (alpha, beta) = (T::from_f64(self.alpha), T::from_f64(self.beta));
        for v in &mut out {
            *v = alpha * *v;
        }
        if let Some((c, c_shape)) = c {
            let (shape, summed) =
                super::broadcast::zip((&out[..], &[n, m][..]), (c, c_shape), |x, y| x + beta * y)?;
            if shape != [n, m] {
                return Err(Error::Model(format!(
                    "Gemm's C of shape {c_shape:?} does not fit [{n}, {m}]"
                )));
            }
            out = summed;
        }
        Ok(Tensor::from_floats(vec![n, m], out))
    }
}

/// Wraps a float vector into the tensor variant of its type.
pub trait FromFloats<T> {
    fn from_floats(shape: Vec<usize>, values: Vec<T>) -> Tensor;
}

impl FromFloats<f64> for Tensor {
    fn from_floats(shape: Vec<usize>, values: Vec<f64>) -> Tensor {
        Tensor::f64(shape, values)
    }
}

impl FromFloats<f32> for Tensor {
    fn from_floats(shape: Vec<usize>, values: Vec<f32>) -> Tensor {
        Tensor::f32(shape, values)
    }
}

impl Kernel for Gemm {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [a, b] = required(inputs, "Gemm")?;
        let c = inputs.get(2).copied().flatten();
        let out = match (&a.data, &b.data, c.map(|c| &c.data)) {
            (Data::F64(x), Data::F64(y), None) => self.compute(x, &a.shape, y, &b.shape, None)?,
            (Data::F64(x), Data::F64(y), Some(Data::F64(z))) => self.compute(
                x,
                &a.shape,
                y,
                &b.shape,
                Some((z, &c.expect("matched").shape)),
            )?,
            (Data::F32(x), Data::F32(y), None) => self.compute(x, &a.shape, y, &b.shape, None)?,
            (Data::F32(x), Data::F32(y), Some(Data::F32(z))) => self.compute(
                x,
                &a.shape,
                y,
                &b.shape,
                Some((z, &c.expect("matched").shape)),
            )?,
            _ => return Err(Error::Model("Gemm needs float tensors of one type".into())),
        };
        Ok(vec![out])
    }
}

/// How a reduction along one axis walks a row-major tensor: `outer` groups of `extent` values
/// spaced `inner` apart.
struct AxisWalk {
    outer: usize,
    extent: usize,
    inner: usize,
}

impl AxisWalk {
    fn new(shape: &[usize], axis: usize) -> Self {
        Self {
            outer: shape[..axis].iter().product(),
            extent: shape[axis],
            inner: shape[axis + 1..].iter().product(),
        }
    }

    /// Calls `f` with the offsets of each group of values reduced together.
    fn for_each_group(&self, mut f: impl FnMut(&mut dyn Iterator<Item = usize>, usize)) {
        for o in 0..self.outer {
            for i in 0..self.inner {
                let base = o * self.extent * self.inner + i;
                let mut offsets = (0..self.extent).map(|e| base + e * self.inner);
                f(&mut offsets, o * self.inner + i);
            }
        }
    }
}

pub struct Softmax {
    axis: i64,
    /// Before opset 13 Softmax flattens everything from `axis` on into one dimension.
    flatten: bool,
}

pub fn softmax(ctx: &Context) -> Result<Box<dyn Kernel>> {
    let flatten = ctx.opset < 13;
    let axis = ctx.attrs.int("axis", if flatten { 1 } else { -1 });
    Ok(Box::new(Softmax { axis, flatten }))
}

/// exp(x - max) / sum, as scikit-learn's `softmax` computes it.
pub(crate) fn softmax_in_place(values: &mut [f64]) {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}

impl Kernel for Softmax {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "Softmax")?;
        let axis = normalize_axis(self.axis, x.rank())?;
        let walk = if self.flatten {
            let flat = [
                x.shape[..axis].iter().product(),
                x.shape[axis..].iter().product(),
            ];
            AxisWalk::new(&flat, 1)
        } else {
            AxisWalk::new(&x.shape, axis)
        };
        let values = x.f64_values()?;
        let mut out = values.to_vec();
        let mut group = Vec::with_capacity(walk.extent);
        walk.for_each_group(|offsets, _| {
            let offsets: Vec<usize> = offsets.collect();
            group.clear();
            group.extend(offsets.iter().map(|&o| values[o]));
            softmax_in_place(&mut group);
            for (&o, &v) in offsets.iter().zip(&group) {
                out[o] = v;
            }
        });
        Ok(vec![match x.data {
            Data::F32(_) => {
                Tensor::f32(x.shape.clone(), out.into_iter().map(|v| v as f32).collect())
            }
            _ => Tensor::f64(x.shape.clone(), out),
        }])
    }

    fn row_wise(&self) -> bool {
        // A negative axis counts from the end, which in a tabular graph is never the batch axis.
        self.axis != 0
    }
}

/// The position of the largest value (the first or, with `last`, the last of equal ones; NaN
/// never wins after the first position).
pub(crate) fn best_position(values: impl Iterator<Item = f64>, last: bool) -> usize {
    let (mut best, mut best_value) = (0, f64::NEG_INFINITY);
    for (e, v) in values.enumerate() {
        let better = if last {
            v >= best_value
        } else {
            v > best_value
        };
        if e == 0 || better {
            (best, best_value) = (e, v);
        }
    }
    best
}

pub struct ArgMax {
    axis: i64,
    keep_dims: bool,
    select_last: bool,
}

pub fn arg_max(attrs: &Attrs) -> Result<Box<dyn Kernel>> {
    Ok(Box::new(ArgMax {
        axis: attrs.int("axis", 0),
        keep_dims: attrs.int("keepdims", 1) != 0,
        select_last: attrs.int("select_last_index", 0) != 0,
    }))
}

impl Kernel for ArgMax {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "ArgMax")?;
        let axis = normalize_axis(self.axis, x.rank())?;
        let values = x.f64_values()?;
        let walk = AxisWalk::new(&x.shape, axis);
        if walk.extent == 0 {
            return Err(Error::Model("ArgMax over an empty axis".into()));
        }
        let mut out = vec![0i64; walk.outer * walk.inner];
        walk.for_each_group(|offsets, slot| {
            out[slot] = best_position(offsets.map(|o| values[o]), self.select_last) as i64;
        });
        let mut shape = x.shape.clone();
        if self.keep_dims {
            shape[axis] = 1;
        } else {
            shape.remove(axis);
        }
        Ok(vec![Tensor::i64(shape, out)])
    }

    fn row_wise(&self) -> bool {
        self.axis != 0
    }
}

pub struct ReduceSum {
    /// Opset < 13 gives the axes as an attribute; later as an optional input.
    axes_attribute: Option<Vec<i64>>,
    keep_dims: bool,
    noop_with_empty_axes: bool,
    row_wise: bool,
}

pub fn reduce_sum(ctx: &Context) -> Result<Box<dyn Kernel>> {
    let axes_attribute = (ctx.opset < 13).then(|| ctx.attrs.ints("axes"));
    let known = axes_attribute
        .clone()
        .or_else(|| ctx.constant_input(1).and_then(|t| t.to_i64().ok()));
    Ok(Box::new(ReduceSum {
        axes_attribute,
        keep_dims: ctx.attrs.int("keepdims", 1) != 0,
        noop_with_empty_axes: ctx.attrs.int("noop_with_empty_axes", 0) != 0,
        row_wise: known.is_some_and(|axes| !axes.is_empty() && axes.iter().all(|&a| a != 0)),
    }))
}

impl Kernel for ReduceSum {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required(inputs, "ReduceSum")?;
        let axes = match &self.axes_attribute {
            Some(axes) => axes.clone(),
            None => optional_i64(inputs, 1)?.unwrap_or_default(),
        };
        if axes.is_empty() && self.noop_with_empty_axes {
            return Ok(vec![x.clone()]);
        }
        let rank = x.rank();
        let reduced: Vec<usize> = if axes.is_empty() {
            (0..rank).collect()
        } else {
            axes.iter()
                .map(|&a| normalize_axis(a, rank))
                .collect::<Result<_>>()?
        };
        let kept: Vec<usize> = (0..rank)
            .map(|d| if reduced.contains(&d) { 1 } else { x.shape[d] })
            .collect();
        let values = x.f64_values()?;
        let mut sums = vec![0.0; kept.iter().product()];
        super::broadcast::for_each([&x.shape[..], &kept[..]], |[i, o]| sums[o] += values[i])?;
        let shape = if self.keep_dims {
            kept
        } else {
            (0..rank)
                .filter(|d| !reduced.contains(d))
                .map(|d| x.shape[d])
                .collect()
        };
        Ok(vec![match x.data {
            Data::F32(_) => Tensor::f32(shape, sums.into_iter().map(|v| v as f32).collect()),
            Data::I64(_) => Tensor::i64(shape, sums.into_iter().map(|v| v as i64).collect()),
            _ => Tensor::f64(shape, sums),
        }])
    }

    fn row_wise(&self) -> bool {
        self.row_wise
    }
}
