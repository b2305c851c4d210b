//! The instruction set hand-tuned loops run with, chosen once at run time.
//!
//! The crate is compiled for baseline x86-64 (SSE2), so a loop the compiler could vectorize
//! eight or sixteen lanes wide runs two lanes wide. Such loops are compiled a second and third
//! time with AVX2 or AVX-512 enabled (`#[target_feature]`) and the copy the CPU supports runs.
//! The copies are the same Rust code, so they compute the same results; tests run every copy
//! the machine has against the plain walk.
//!
//! `EDGEWISE_ISA=baseline|avx2|avx512` lowers the choice (never above what the CPU has), for
//! comparing the copies on one machine.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    Baseline,
    /// AVX2, FMA, BMI1/2.
    Avx2,
    /// AVX-512 F, CD, VL, DQ, BW on top of `Avx2`.
    Avx512,
}

impl Isa {
    /// The best instruction set this CPU has, lowered by `EDGEWISE_ISA` if set.
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            let best = Self::best();
            let wanted = match std::env::var("EDGEWISE_ISA").as_deref() {
                Ok("baseline") => Isa::Baseline,
                Ok("avx2") => Isa::Avx2,
                _ => Isa::Avx512,
            };
            best.min(wanted)
        })
    }

    /// Every instruction set this CPU can run, lowest first (for tests).
    pub fn available() -> Vec<Isa> {
        [Isa::Baseline, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.supported())
            .collect()
    }

    /// Whether this CPU can run code compiled for `self`.
    pub fn supported(self) -> bool {
        static BEST: OnceLock<Isa> = OnceLock::new();
        self <= *BEST.get_or_init(Self::best)
    }

    #[cfg(target_arch = "x86_64")]
    fn best() -> Isa {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma") && has!("bmi1") && has!("bmi2");
        let avx512 = has!("avx512f")
            && has!("avx512cd")
            && has!("avx512vl")
            && has!("avx512dq")
            && has!("avx512bw");
        match (avx2, avx512) {
            (true, true) => Isa::Avx512,
            (true, false) => Isa::Avx2,
            _ => Isa::Baseline,
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn best() -> Isa {
        Isa::Baseline
    }
}

/// Whether the CPU is Intel's (`cpuid` vendor "GenuineIntel"): AVX-512 gathers cost very
/// different amounts on Intel and AMD cores, and the tree walks choose by it.
pub fn is_intel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let vendor = std::arch::x86_64::__cpuid(0);
        [vendor.ebx, vendor.edx, vendor.ecx] == [0x756E_6547, 0x4965_6E69, 0x6C65_746E]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
