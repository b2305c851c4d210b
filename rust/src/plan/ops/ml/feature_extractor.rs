//! ArrayFeatureExtractor: select elements along the last axis of X by the indices in Y.

use super::super::Kernel;
use super::{Attrs, NodeName};
use crate::error::Result;
use crate::plan::tensor::Tensor;

#[derive(Debug)]
pub(super) struct ArrayFeatureExtractor {
    node: NodeName,
}

impl ArrayFeatureExtractor {
    pub fn new(attrs: &Attrs) -> Self {
        Self {
            node: NodeName::of(attrs),
        }
    }
}

impl Kernel for ArrayFeatureExtractor {
    /// Z has X's shape with the last axis replaced by Y's element count, whatever Y's shape; a
    /// 1-D X gives [1, count] (onnxruntime's backward-compatible case, followed by the ONNX
    /// reference). Indices must lie in [0, last axis), as onnxruntime checks.
    ///
    /// Rows stay apart (the default `row_wise`) when either input is a constant: column
    /// selection from an [N, F] X by constant indices, or a constant X (class labels, leaf
    /// values) indexed by one index per row, where Z carries the batch on its last axis. Only
    /// when X and Y both come from the batch does every row's Z read every row's indices; no
    /// converter emits that, and build time cannot see which inputs are constants here.
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x, y] = self.node.inputs(inputs)?;
        let indices = y
            .as_i64()
            .map_err(|_| self.node.wrong_type(y, "int64 indices (Y)"))?;
        let Some((&width, outer)) = x.shape.split_last() else {
            return Err(self.node.error("X is a scalar; it needs at least one axis"));
        };
        let mut columns = Vec::with_capacity(indices.len());
        for (i, &index) in indices.iter().enumerate() {
            match usize::try_from(index) {
                Ok(column) if column < width => columns.push(column),
                _ => {
                    return Err(self.node.error(format_args!(
                        "index Y[{i}] = {index} is outside [0, {width})"
                    )))
                }
            }
        }
        let rows: usize = outer.iter().product();
        let mut gather = Vec::with_capacity(rows * columns.len());
        for row in 0..rows {
            gather.extend(columns.iter().map(|&column| row * width + column));
        }
        let shape = if outer.is_empty() {
            vec![1, columns.len()]
        } else {
            let mut shape = outer.to_vec();
            shape.push(columns.len());
            shape
        };
        Ok(vec![x.gather_elements(shape, &gather)])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::error::Error;
    use crate::plan::tensor::Tensor;

    fn extract(x: Tensor, y: Tensor) -> crate::error::Result<Vec<Tensor>> {
        kernel("ArrayFeatureExtractor", 1, vec![])?.run(&[Some(&x), Some(&y)])
    }

    #[test]
    fn selects_columns_of_a_matrix() {
        let x = Tensor::f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let z = extract(x, Tensor::i64(vec![1, 2], vec![2, 0])).unwrap();
        assert_eq!(z, [Tensor::f32(vec![2, 2], vec![3.0, 1.0, 6.0, 4.0])]);
    }

    #[test]
    fn a_vector_gives_one_row() {
        let x = dictionary(vec![3], &["a", "b", "c"], &[0, 1, 2]);
        let z = extract(x, Tensor::i64(vec![2, 1], vec![2, 0])).unwrap();
        assert_eq!(z[0].shape, [1, 2]);
        assert_eq!(texts(&z[0]), ["c", "a"]);
    }

    #[test]
    fn higher_ranks_keep_leading_axes() {
        let x = Tensor::i64(vec![2, 2, 3], (0..12).collect());
        let z = extract(x, Tensor::i64(vec![2, 1], vec![2, 1])).unwrap();
        let expected = vec![2, 1, 5, 4, 8, 7, 11, 10];
        assert_eq!(z, [Tensor::i64(vec![2, 2, 2], expected)]);
    }

    #[test]
    fn bad_indices_are_errors() {
        let x = || Tensor::f32(vec![1, 3], vec![1.0, 2.0, 3.0]);
        for index in [-1, 3] {
            let err = extract(x(), Tensor::i64(vec![1], vec![index]));
            assert!(matches!(err, Err(Error::Model(_))));
            assert!(message(err).contains(&format!("Y[0] = {index} is outside [0, 3)")));
        }
        // No indices (a batch of no rows) select nothing.
        let empty = extract(x(), Tensor::i64(vec![0], vec![])).expect("empty selection");
        assert_eq!(empty[0].shape, vec![1, 0]);
        let err = extract(x(), Tensor::f32(vec![1], vec![0.0]));
        assert!(message(err).contains("expected int64"));
    }
}
