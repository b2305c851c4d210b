//! The one internal form every tree operator version is read into, and its checks.
//!
//! Branches and leaves live in separate lists, as in ai.onnx.ml opset 5: a branch names its two
//! children, each either a branch or a leaf, and a leaf holds the weights it adds to targets.
//! Nothing here is laid out for speed (that is `layout`); this form is what the attribute
//! readers produce and what the checks and the tests' reference traversal read.

use super::Attrs;
use crate::error::Result;

/// How a branch compares its feature with its split value. `missing_true` sends NaN to the true
/// branch on top of the comparison (which NaN fails for every mode but `Neq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    /// The value is one of the branch's set (`Ensemble::sets`).
    Member,
}

impl Mode {
    /// The comparison on plain numbers (not `Member`, which needs its set): how the tests'
    /// reference traversal decides.
    #[cfg(test)]
    pub fn compare<T: PartialOrd>(self, x: T, split: T) -> bool {
        match self {
            Mode::Leq => x <= split,
            Mode::Lt => x < split,
            Mode::Gte => x >= split,
            Mode::Gt => x > split,
            Mode::Eq => x == split,
            Mode::Neq => x != split,
            Mode::Member => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Child {
    Branch(u32),
    Leaf(u32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    pub mode: Mode,
    pub feature: u32,
    /// The threshold; unused by `Member` branches.
    pub split: f64,
    /// `Member` branches: the index of their set in `Ensemble::sets`.
    pub set: u32,
    pub missing_true: bool,
    pub yes: Child,
    pub no: Child,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weight {
    pub target: u32,
    pub value: f64,
}

/// The element type the model's splits were given in: it decides which inputs compare exactly
/// in float32 (see `layout`), and opset 5 requires it to be the input's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitType {
    F32,
    F64,
}

#[derive(Clone, Debug, Default)]
pub struct Ensemble {
    pub branches: Vec<Branch>,
    /// The weights each leaf adds, in the model's order (which fixes the order of summation).
    pub leaves: Vec<Vec<Weight>>,
    /// One entry per tree, in the model's order.
    pub roots: Vec<Child>,
    /// Sorted, deduplicated members of each `Member` branch's set, -0.0 folded into 0.0.
    pub sets: Vec<Vec<f64>>,
    pub n_targets: usize,
}

/// Features are stored in 28 bits next to the node's flags (see `layout`).
pub const MAX_FEATURES: u32 = 1 << 28;

/// Targets (or classes) beyond this are refused: scores take `n_targets` f64 per row.
pub const MAX_TARGETS: usize = 1 << 20;

/// Whether each target gets a weight from every row, from none, or from some rows only: the
/// output rules (after onnxruntime) treat a target no leaf reached differently from a zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hits {
    Never,
    Always,
    Sometimes,
}

impl Ensemble {
    /// Check indices and shape: every child exists, weights name real targets, features fit,
    /// and no branch can reach itself (a cycle would make traversal endless).
    pub fn check(&self, attrs: &Attrs) -> Result<()> {
        if self.n_targets == 0 || self.n_targets > MAX_TARGETS {
            return Err(attrs.unsupported(format_args!("{} targets", self.n_targets)));
        }
        let n_branches = self.branches.len();
        let child_ok = |c: Child| match c {
            Child::Branch(b) => (b as usize) < n_branches,
            Child::Leaf(l) => (l as usize) < self.leaves.len(),
        };
        for (i, b) in self.branches.iter().enumerate() {
            if !child_ok(b.yes) || !child_ok(b.no) {
                return Err(attrs.error(format_args!("node {i} has a child that does not exist")));
            }
            if b.yes == Child::Branch(i as u32) || b.no == Child::Branch(i as u32) {
                return Err(attrs.error(format_args!("node {i} has itself as a child")));
            }
            if b.feature >= MAX_FEATURES {
                return Err(attrs.unsupported(format_args!(
                    "node {i} reads feature {}, beyond the 2^28 features supported",
                    b.feature
                )));
            }
            if b.mode == Mode::Member && b.set as usize >= self.sets.len() {
                return Err(attrs.error(format_args!("node {i} has no membership set")));
            }
        }
        if let Some(root) = self.roots.iter().find(|&&r| !child_ok(r)) {
            return Err(attrs.error(format_args!("tree root {root:?} does not exist")));
        }
        for (l, weights) in self.leaves.iter().enumerate() {
            if let Some(w) = weights.iter().find(|w| w.target as usize >= self.n_targets) {
                return Err(attrs.error(format_args!(
                    "leaf {l} adds to target {} of {}",
                    w.target, self.n_targets
                )));
            }
        }
        if let Some(b) = self.find_cycle() {
            return Err(attrs.error(format_args!("node {b} is part of a cycle")));
        }
        Ok(())
    }

    /// A branch on a cycle, if any: depth-first from every root, without recursion so that a
    /// degenerate tree a million nodes deep cannot overflow the stack.
    fn find_cycle(&self) -> Option<u32> {
        const NEW: u8 = 0;
        const OPEN: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![NEW; self.branches.len()];
        let mut stack: Vec<(u32, u8)> = Vec::new();
        for &root in &self.roots {
            let Child::Branch(root) = root else { continue };
            if state[root as usize] == DONE {
                continue;
            }
            state[root as usize] = OPEN;
            stack.push((root, 0));
            while let Some((b, next)) = stack.last_mut() {
                let branch = &self.branches[*b as usize];
                let child = match *next {
                    0 => branch.yes,
                    1 => branch.no,
                    _ => {
                        state[*b as usize] = DONE;
                        stack.pop();
                        continue;
                    }
                };
                *next += 1;
                if let Child::Branch(c) = child {
                    match state[c as usize] {
                        NEW => {
                            state[c as usize] = OPEN;
                            stack.push((c, 0));
                        }
                        OPEN => return Some(c),
                        _ => {}
                    }
                }
            }
        }
        None
    }

    /// The leaves a tree can reach, each once even when branches share a subtree. `seen`
    /// holds a stamp per branch, `stamp` a value no branch holds yet.
    fn tree_leaves(&self, root: Child, seen: &mut [u32], stamp: u32) -> Vec<u32> {
        let mut leaves = Vec::new();
        let mut stack = vec![root];
        while let Some(child) = stack.pop() {
            match child {
                Child::Leaf(l) => leaves.push(l),
                Child::Branch(b) if seen[b as usize] != stamp => {
                    seen[b as usize] = stamp;
                    let branch = &self.branches[b as usize];
                    stack.extend([branch.no, branch.yes]);
                }
                Child::Branch(_) => {}
            }
        }
        leaves.sort_unstable();
        leaves.dedup();
        leaves
    }

    /// For each target: whether rows always, never or sometimes reach a leaf that weighs it.
    /// A target is always hit when some tree weighs it at every leaf that tree can reach.
    pub fn hits(&self) -> Vec<Hits> {
        let mut ever = vec![false; self.n_targets];
        let mut always = vec![false; self.n_targets];
        // Per target: leaves of the current tree weighing it, and the last leaf counted.
        let mut count = vec![0usize; self.n_targets];
        let mut counted = vec![u32::MAX; self.n_targets];
        let mut seen = vec![u32::MAX; self.branches.len()];
        for (tree, &root) in self.roots.iter().enumerate() {
            let leaves = self.tree_leaves(root, &mut seen, tree as u32);
            let mut touched = Vec::new();
            for &l in &leaves {
                for w in &self.leaves[l as usize] {
                    let t = w.target as usize;
                    if counted[t] != l {
                        counted[t] = l;
                        if count[t] == 0 {
                            touched.push(t);
                        }
                        count[t] += 1;
                    }
                }
            }
            for t in touched {
                ever[t] = true;
                always[t] |= count[t] == leaves.len();
                count[t] = 0;
                counted[t] = u32::MAX;
            }
        }
        (0..self.n_targets)
            .map(|t| match (ever[t], always[t]) {
                (_, true) => Hits::Always,
                (false, _) => Hits::Never,
                (true, false) => Hits::Sometimes,
            })
            .collect()
    }
}

/// A membership set as `Ensemble::sets` keeps it. Sets never hold NaN: opset 5 uses NaN to
/// separate them.
pub fn member_set(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    // -0.0 == 0.0 for the comparisons a set stands for, so keep one of them.
    let mut set: Vec<f64> = values.into_iter().map(|v| v + 0.0).collect();
    set.sort_by(f64::total_cmp);
    set.dedup();
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::onnx::NodeProto;

    fn leq(feature: u32, split: f64, yes: Child, no: Child) -> Branch {
        Branch {
            mode: Mode::Leq,
            feature,
            split,
            set: 0,
            missing_true: false,
            yes,
            no,
        }
    }

    fn weight(target: u32, value: f64) -> Weight {
        Weight { target, value }
    }

    #[test]
    fn cycles_and_bad_children_are_model_errors() {
        let node = NodeProto::default();
        let attrs = Attrs::new(&node);
        let mut e = Ensemble {
            branches: vec![
                leq(0, 0.0, Child::Branch(1), Child::Leaf(0)),
                leq(0, 0.0, Child::Branch(0), Child::Leaf(0)),
            ],
            leaves: vec![vec![weight(0, 1.0)]],
            roots: vec![Child::Branch(0)],
            sets: vec![],
            n_targets: 1,
        };
        assert!(e.check(&attrs).unwrap_err().to_string().contains("cycle"));
        e.branches[1].yes = Child::Leaf(3);
        assert!(e
            .check(&attrs)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        e.branches[1].yes = Child::Branch(1);
        assert!(e.check(&attrs).unwrap_err().to_string().contains("itself"));
        e.branches[1].yes = Child::Leaf(0);
        e.check(&attrs).unwrap();
        e.leaves[0][0].target = 1;
        assert!(e
            .check(&attrs)
            .unwrap_err()
            .to_string()
            .contains("target 1 of 1"));
    }

    #[test]
    fn hits_tell_always_never_and_sometimes() {
        // Tree 0 weighs target 0 at both leaves and target 1 at one; tree 1 weighs target 0.
        let e = Ensemble {
            branches: vec![leq(0, 0.0, Child::Leaf(0), Child::Leaf(1))],
            leaves: vec![
                vec![weight(0, 1.0), weight(0, 2.0), weight(1, 1.0)],
                vec![weight(0, 1.0)],
                vec![weight(0, 1.0)],
            ],
            roots: vec![Child::Branch(0), Child::Leaf(2)],
            sets: vec![],
            n_targets: 3,
        };
        assert_eq!(e.hits(), vec![Hits::Always, Hits::Sometimes, Hits::Never]);
    }

    #[test]
    fn sets_fold_negative_zero() {
        assert_eq!(member_set([2.0, -0.0, 0.0, 2.0]), vec![0.0, 2.0]);
        assert!(member_set([-0.0])[0].is_sign_positive());
    }
}
