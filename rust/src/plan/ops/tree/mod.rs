//! Tree ensembles: TreeEnsembleClassifier / TreeEnsembleRegressor (ai.onnx.ml v1 and v3) and
//! TreeEnsemble (ai.onnx.ml opset 5).
//!
//! Each operator version is read into one internal form (`ensemble`, by `legacy` and `v5`),
//! checked, then laid out as flat node arrays (`layout`, `node`, `merge`) that `evaluate` walks
//! tree by tree over tiles of rows (eight rows to an AVX-512 vector where it can, `wide`;
//! float32 forests in `wide32`, which adds random forests' leaf weights as it walks), or,
//! for forests of small `<=` trees (gradient boosting), evaluates with leaf bitvectors
//! (`bitvector`); `aggregate` sums leaf weights in f64 and `head`
//! applies base values, post_transform and the classifier's label rule.
//!
//! The spec's semantics are followed, and where it is silent, onnxruntime 1.32's (checked by
//! running it); where onnxruntime's answer is an accident (unset memory, a label it cannot
//! mean), the kernel is refused as unsupported, so the graph runs in onnxruntime instead.
//!
//! Comparisons are exact in the split values' own precision: a float32 input against float32
//! splits compares in float32, anything involving a double compares in double (a float32 input
//! widened to double compares exactly as it would in float32 against float32 splits).

mod aggregate;
mod bitvector;
#[cfg(target_arch = "x86_64")]
mod blocks;
#[cfg(target_arch = "x86_64")]
mod by_tree;
mod ensemble;
mod evaluate;
mod head;
mod layout;
mod legacy;
mod merge;
mod node;
mod packed;
mod scalar32;
mod scan;
mod top;
mod v5;
#[cfg(target_arch = "x86_64")]
mod wide;
#[cfg(target_arch = "x86_64")]
mod wide32;
mod word;

#[cfg(test)]
mod bitvector_tests;
#[cfg(test)]
mod classifier_tests;
#[cfg(test)]
mod forest_tests;
#[cfg(test)]
mod random_tests;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::{required, Attrs, Kernel};
use crate::error::{Error, Result};
use crate::plan::isa::Isa;
use crate::plan::tensor::{Data, Strings, Tensor};
use aggregate::{accumulate, Aggregate, Scores};
use ensemble::{Ensemble, Hits, SplitType};
use head::{Classification, Regression};
use layout::{Forest, LayoutError};

/// Tiles: all trees run over one tile of rows before the next, so a tree's nodes are reused by
/// many rows while cached; the tile's inputs should stay in the core's L2. 1024 rows measured
/// best on a 100-tree depth-12 forest (+6% over 256; neutral on small trees).
const TILE_ROWS: usize = 1024;
const TILE_INPUT_BYTES: usize = 256 << 10;
/// At most this many scores per tile, for models with very many targets.
const TILE_SCORES: usize = 1 << 16;
/// Rows the vector walks (`wide`, `wide32`) take at a time.
const TILE_STEP: usize = 64;

pub fn handles(op: &str) -> bool {
    matches!(
        op,
        "TreeEnsembleClassifier" | "TreeEnsembleRegressor" | "TreeEnsemble"
    )
}

pub fn build(op: &str, attrs: &Attrs, opset: i64) -> Result<Box<dyn Kernel>> {
    let kernel = match op {
        "TreeEnsembleRegressor" => regressor(attrs)?,
        "TreeEnsembleClassifier" => classifier(attrs)?,
        _ if opset < 5 => {
            return Err(attrs.error(format_args!(
                "TreeEnsemble needs ai.onnx.ml opset 5, the model imports {opset}"
            )))
        }
        _ => {
            let (ensemble, split_type, regression) = v5::read(attrs)?;
            TreeKernel::new(
                attrs,
                ensemble,
                split_type,
                Head::Regression(regression),
                true,
            )?
        }
    };
    Ok(Box::new(kernel))
}

fn regressor(attrs: &Attrs) -> Result<TreeKernel> {
    let n_targets = attrs.int("n_targets", 0);
    let n_targets = usize::try_from(n_targets)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| attrs.error(format_args!("n_targets is {n_targets}")))?;
    let (ensemble, split_type, regression) =
        legacy::read(attrs, "target", n_targets)?.regression(attrs)?;
    TreeKernel::new(
        attrs,
        ensemble,
        split_type,
        Head::Regression(regression),
        false,
    )
}

fn classifier(attrs: &Attrs) -> Result<TreeKernel> {
    let strings = attrs.strings("classlabels_strings");
    let ints = attrs.ints("classlabels_int64s");
    let labels = match (strings.is_empty(), ints.is_empty()) {
        (false, true) => Labels::Str(Arc::new(strings)),
        (true, false) => Labels::Int(ints),
        _ => {
            return Err(attrs
                .error("exactly one of classlabels_strings and classlabels_int64s must be given"))
        }
    };
    let n_classes = labels.len();
    if n_classes < 2 {
        return Err(attrs.unsupported("a classifier with a single class"));
    }
    let (ensemble, split_type, classification) =
        legacy::read(attrs, "class", n_classes)?.classification(attrs, &labels)?;
    let class1_always = ensemble.hits()[1] == Hits::Always;
    classification
        .check(n_classes, class1_always)
        .map_err(|why| {
            attrs.unsupported(format_args!("{why}: onnxruntime's output is undefined"))
        })?;
    let head = Head::Classification(classification, labels);
    TreeKernel::new(attrs, ensemble, split_type, head, false)
}

#[derive(Clone, Debug)]
pub enum Labels {
    Int(Vec<i64>),
    Str(Arc<Vec<String>>),
}

impl Labels {
    fn len(&self) -> usize {
        match self {
            Labels::Int(v) => v.len(),
            Labels::Str(v) => v.len(),
        }
    }

    fn tensor(&self, indices: Vec<usize>) -> Tensor {
        let shape = vec![indices.len()];
        match self {
            Labels::Int(values) => Tensor::i64(shape, indices.iter().map(|&i| values[i]).collect()),
            Labels::Str(table) => Tensor::new(
                shape,
                Data::Str(Strings {
                    table: table.clone(),
                    codes: indices.into_iter().map(|i| i as u32).collect(),
                }),
            ),
        }
    }
}

enum Head {
    Regression(Regression),
    Classification(Classification, Labels),
}

struct TreeKernel {
    /// The node, as run-time errors name it.
    name: String,
    ensemble: Ensemble,
    split_type: SplitType,
    /// Laid out on first use for each input precision. `None`: float32 NaNs cannot number
    /// this many leaves, so float32 inputs use the f64 layout.
    f32_forest: OnceLock<Option<Forest<f32>>>,
    f64_forest: OnceLock<Forest<f64>>,
    /// Whether float64 blocks may still be float32s (`evaluate_f64`), cleared by the first
    /// block that is not: an ensemble's inputs are float32s throughout (the casts of a random
    /// forest's exact graph) or hardly ever (gradient boosting's scaled inputs, where trying
    /// every block cost 2% of the model step).
    narrows: AtomicBool,
    aggregate: Aggregate,
    head: Head,
    /// Whether which targets a row reached must be tracked, rather than `static_hits`.
    tracked: bool,
    static_hits: Vec<bool>,
    /// Opset 5: the output has the input's type, which must be the splits' type.
    typed_like_input: bool,
}

impl TreeKernel {
    fn new(
        attrs: &Attrs,
        ensemble: Ensemble,
        split_type: SplitType,
        head: Head,
        typed_like_input: bool,
    ) -> Result<Self> {
        let hits = ensemble.hits();
        let aggregate = match &head {
            Head::Regression(r) => r.aggregate,
            Head::Classification(..) => Aggregate::Sum,
        };
        let several = ensemble.n_targets > 1;
        let kernel = Self {
            name: attrs.node().describe(),
            tracked: aggregate.needs_hits() || (several && hits.contains(&Hits::Sometimes)),
            static_hits: hits.iter().map(|&h| h == Hits::Always).collect(),
            ensemble,
            split_type,
            f32_forest: OnceLock::new(),
            f64_forest: OnceLock::new(),
            narrows: AtomicBool::new(true),
            aggregate,
            head,
            typed_like_input,
        };
        // Lay out now the forest the kernel walks first, so that a model too large to lay
        // out fails when the plan is made: the float32 layout, which float64 splits take too
        // for inputs that are float32s (scikit-learn's random forests); the float64 layout
        // only where that one cannot serve (the two have the same nodes, so a float64 layout
        // needed later for other inputs cannot be too large either).
        let f32_serves = kernel.f32_forest()?.is_some();
        if split_type == SplitType::F64 && !f32_serves {
            kernel.f64_forest()?;
        }
        Ok(kernel)
    }

    fn layout_error(&self, error: LayoutError) -> Error {
        Error::Unsupported(format!(
            "{}: {}",
            self.name,
            match error {
                LayoutError::TooManySlots => "too many leaves to number".to_owned(),
                LayoutError::TooLarge(n) => format!("shared subtrees expand past {n} nodes"),
            }
        ))
    }

    /// The float32 layout, if it exists and walks at least as fast as the float64 one.
    fn f32_forest(&self) -> Result<Option<&Forest<f32>>> {
        Ok(self.f32_layout()?.filter(|f| !f.loses_vector_walk()))
    }

    fn f32_layout(&self) -> Result<Option<&Forest<f32>>> {
        if let Some(forest) = self.f32_forest.get() {
            return Ok(forest.as_ref());
        }
        let forest = match Forest::new(&self.ensemble) {
            Ok(forest) => Some(forest),
            Err(LayoutError::TooManySlots) => None,
            Err(e) => return Err(self.layout_error(e)),
        };
        Ok(self.f32_forest.get_or_init(|| forest).as_ref())
    }

    fn f64_forest(&self) -> Result<&Forest<f64>> {
        if let Some(forest) = self.f64_forest.get() {
            return Ok(forest);
        }
        let forest = Forest::new(&self.ensemble).map_err(|e| self.layout_error(e))?;
        Ok(self.f64_forest.get_or_init(|| forest))
    }

    fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::Model(format!("{}: {message}", self.name))
    }

    /// Scores (row-major, one per target or class) and, for classifiers, label indices.
    /// `tile(x, rows, scores)` adds the trees' weights for a tile of rows into `scores`.
    fn evaluate<X>(
        &self,
        x: &[X],
        rows: usize,
        width: usize,
        mut tile_scores: impl FnMut(&[X], usize, &mut Scores),
    ) -> Result<(Vec<f64>, Vec<usize>)> {
        // Every layout of the ensemble reads the same features.
        let max_feature = match self.f32_forest.get() {
            Some(Some(forest)) => forest.max_feature,
            _ => self.f64_forest()?.max_feature,
        };
        if let Some(feature) = max_feature.filter(|&f| f >= width) {
            return Err(self.error(format_args!(
                "a node reads feature {feature} but the input has {width} columns"
            )));
        }
        let n_out = self.ensemble.n_targets;
        let row_bytes = width * std::mem::size_of::<X>();
        let most = (TILE_ROWS.min(TILE_INPUT_BYTES / row_bytes.max(1)))
            .min(TILE_SCORES / n_out)
            .max(1);
        // Tiles of even size in whole vector steps: a block of 1,024 rows of 35 features
        // otherwise became tiles of 936 and 88 rows, whose 64 leftover rows (6%) took a fifth
        // of the time in the scalar walk.
        let tiles = rows.div_ceil(most).max(1);
        let tile = (rows.div_ceil(tiles).next_multiple_of(TILE_STEP)).clamp(1, rows.max(1));
        let mut scores = Scores::new(tile, n_out, self.tracked);
        let mut out = vec![0.0; rows * n_out];
        let mut labels = Vec::new();
        // A classifier's row is copied out: the label rule adds base values into it.
        let (mut row, mut row_hits) = (vec![0.0; n_out], vec![false; n_out]);
        for start in (0..rows).step_by(tile) {
            let n = tile.min(rows - start);
            let x = &x[start * width..(start + n) * width];
            scores.reset(n);
            tile_scores(x, n, &mut scores);
            for r in 0..n {
                let hits = scores.row_hits(r).unwrap_or(&self.static_hits);
                let out = &mut out[(start + r) * n_out..(start + r + 1) * n_out];
                match &self.head {
                    Head::Regression(regression) => regression.finish(scores.row(r), hits, out),
                    Head::Classification(classification, _) => {
                        row.copy_from_slice(scores.row(r));
                        row_hits.copy_from_slice(hits);
                        labels.push(classification.finish(&mut row, &mut row_hits, out));
                    }
                }
            }
        }
        Ok((out, labels))
    }

    /// Float32 inputs walk the float32 layout, whose splits decide exactly as the model's own
    /// (`node::narrow_f32`), when the leaves fit its slots.
    fn evaluate_f32(&self, x: &[f32], rows: usize, width: usize) -> Result<(Vec<f64>, Vec<usize>)> {
        let (aggregate, isa) = (self.aggregate, Isa::detect());
        match self.f32_forest()? {
            Some(forest) => self.evaluate(x, rows, width, |x, n, scores| {
                accumulate(forest, x, n, width, aggregate, isa, scores)
            }),
            None => {
                let forest = self.f64_forest()?;
                self.evaluate(x, rows, width, |x, n, scores| {
                    accumulate(forest, x, n, width, aggregate, isa, scores)
                })
            }
        }
    }

    /// Float64 inputs: a block whose every value is a float32 (as after scikit-learn's cast of
    /// X for its trees) walks the float32 layout, which then decides exactly as the float64
    /// one, at twice the vector lanes and less cache; any other block walks the float64 layout,
    /// laid out on first need, and so do all later blocks, unchecked.
    fn evaluate_f64(&self, x: &[f64], rows: usize, width: usize) -> Result<(Vec<f64>, Vec<usize>)> {
        if self.narrows.load(Ordering::Relaxed) && self.f32_forest()?.is_some() {
            let mut narrowed = Vec::new();
            if as_f32(x, &mut narrowed) {
                return self.evaluate_f32(&narrowed, rows, width);
            }
            self.narrows.store(false, Ordering::Relaxed);
        }
        let (aggregate, isa) = (self.aggregate, Isa::detect());
        let forest = self.f64_forest()?;
        self.evaluate(x, rows, width, |x, n, scores| {
            accumulate(forest, x, n, width, aggregate, isa, scores)
        })
    }
}

/// `x` as float32 in `out`, if every value converts exactly (NaN included); else false.
/// One pass, branch-free, so that it vectorizes.
fn as_f32(x: &[f64], out: &mut Vec<f32>) -> bool {
    out.clear();
    out.reserve(x.len());
    let mut exact = true;
    out.extend(x.iter().map(|&v| {
        let narrow = v as f32;
        exact &= (f64::from(narrow) == v) | v.is_nan();
        narrow
    }));
    exact
}

impl Kernel for TreeKernel {
    fn run(&self, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let [x] = required::<1>(inputs, &self.name)?;
        let n_out = self.ensemble.n_targets;
        let (rows, width) = match *x.shape.as_slice() {
            [rows, width] => (rows, width),
            [_] => {
                return Err(Error::Unsupported(format!(
                    "{}: a 1-D input (onnxruntime reads it as one row of features, not a batch)",
                    self.name
                )))
            }
            ref shape => {
                return Err(self.error(format_args!("input of shape {shape:?}, expected [N, F]")))
            }
        };
        if rows.checked_mul(width) != Some(x.len()) || rows.checked_mul(n_out).is_none() {
            return Err(self.error(format_args!(
                "input holds {} values for shape {:?}",
                x.len(),
                x.shape
            )));
        }
        let strict = self.typed_like_input;
        let (scores, labels) = match (&x.data, self.split_type) {
            (Data::F32(_), SplitType::F64) | (Data::F64(_), SplitType::F32) if strict => {
                return Err(self.error(format_args!(
                    "the input is {} but nodes_splits are {}",
                    x.elem_type().name(),
                    if self.split_type == SplitType::F32 {
                        "float32"
                    } else {
                        "float64"
                    }
                )))
            }
            (Data::F32(v), _) => self.evaluate_f32(v, rows, width)?,
            (Data::F64(v), _) => self.evaluate_f64(v, rows, width)?,
            _ => {
                return Err(Error::Unsupported(format!(
                    "{}: a {} input (float and double only)",
                    self.name,
                    x.elem_type().name()
                )))
            }
        };
        let shape = vec![rows, n_out];
        let scores = if strict && matches!(x.data, Data::F64(_)) {
            Tensor::f64(shape, scores)
        } else {
            Tensor::f32(shape, scores.into_iter().map(|v| v as f32).collect())
        };
        Ok(match &self.head {
            Head::Regression(_) => vec![scores],
            Head::Classification(_, names) => vec![names.tensor(labels), scores],
        })
    }

    fn row_wise(&self) -> bool {
        true
    }
}
