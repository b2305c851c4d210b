//! Numpy-style broadcasting of several tensors against each other.

use crate::error::{Error, Result};

/// The shape that `shapes` broadcast to.
pub fn shape_of(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1; rank];
    for shape in shapes {
        let pad = rank - shape.len();
        for (i, &dim) in shape.iter().enumerate() {
            let slot = &mut out[pad + i];
            if *slot == 1 {
                *slot = dim;
            } else if dim != 1 && dim != *slot {
                return Err(Error::Model(format!(
                    "shapes {shapes:?} cannot be broadcast together"
                )));
            }
        }
    }
    Ok(out)
}

/// Element strides of a row-major tensor of `shape` seen through `out` (0 where broadcast).
fn strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let pad = out.len() - shape.len();
    let mut strides = vec![0; out.len()];
    let mut step = 1;
    for i in (0..shape.len()).rev() {
        if shape[i] != 1 {
            strides[pad + i] = step;
        }
        step *= shape[i];
    }
    strides
}

/// Visits every element of the broadcast shape with the matching offset into each input.
///
/// The innermost dimension is a tight strided loop; the outer ones advance an index counter.
pub fn for_each<const K: usize>(
    shapes: [&[usize]; K],
    mut visit: impl FnMut([usize; K]),
) -> Result<Vec<usize>> {
    let out = shape_of(&shapes)?;
    let count: usize = out.iter().product();
    if count == 0 {
        return Ok(out);
    }
    let strides: [Vec<usize>; K] = shapes.map(|s| strides(s, &out));
    let rank = out.len();
    let inner = if rank == 0 { 1 } else { out[rank - 1] };
    let inner_strides: [usize; K] =
        std::array::from_fn(|k| if rank == 0 { 0 } else { strides[k][rank - 1] });
    let mut index = vec![0usize; rank.saturating_sub(1)];
    let mut base = [0usize; K];
    for _ in 0..count / inner {
        for j in 0..inner {
            visit(std::array::from_fn(|k| base[k] + j * inner_strides[k]));
        }
        // Advance the outer index like an odometer, keeping each input's base offset.
        for d in (0..index.len()).rev() {
            index[d] += 1;
            for k in 0..K {
                base[k] += strides[k][d];
            }
            if index[d] < out[d] {
                break;
            }
            for k in 0..K {
                base[k] -= strides[k][d] * out[d];
            }
            index[d] = 0;
        }
    }
    Ok(out)
}

/// `f` over two broadcast operands; equal shapes and a scalar operand skip the index work.
pub fn zip<A: Copy, B: Copy, O>(
    a: (&[A], &[usize]),
    b: (&[B], &[usize]),
    f: impl Fn(A, B) -> O,
) -> Result<(Vec<usize>, Vec<O>)> {
    let ((a, a_shape), (b, b_shape)) = (a, b);
    if a_shape == b_shape {
        return Ok((
            a_shape.to_vec(),
            a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect(),
        ));
    }
    let shape = shape_of(&[a_shape, b_shape])?;
    if shape == a_shape {
        if b.len() == 1 {
            return Ok((shape, a.iter().map(|&x| f(x, b[0])).collect()));
        }
        // One value per column ([k] or [1, k] against [n, k]): the common preprocessing case.
        let width = *a_shape.last().unwrap_or(&1);
        if width > 0 && b.len() == width && b_shape.last() == Some(&width) {
            let mut out = Vec::with_capacity(a.len());
            for row in a.chunks_exact(width) {
                out.extend(row.iter().zip(b).map(|(&x, &y)| f(x, y)));
            }
            return Ok((shape, out));
        }
    }
    let mut out = Vec::with_capacity(shape.iter().product());
    for_each([a_shape, b_shape], |[i, j]| out.push(f(a[i], b[j])))?;
    Ok((shape, out))
}
