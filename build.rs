//! Compiles each `src/kernels/cuda/*.cu` to a fatbin when (and only when) the `cuda` feature is
//! on, so the default build never needs nvcc. nvcc: `$NVCC`, else `$CUDA_HOME/bin/nvcc`, else
//! `nvcc` on PATH (scripts/cuda-toolkit.sh installs the pinned one).
//!
//! Each fatbin holds machine code (SASS) for `sm_$CUDA_COMPUTE_CAP` and PTX for
//! `compute_$CUDA_COMPUTE_CAP` (default 90, Hopper): the SASS loads with no JIT step on that
//! generation, and the PTX is JIT-compiled by the driver on newer ones. An `a`/`f` suffix on the
//! cap (`90a`) is ignored: these kernels use no architecture-specific instructions, and the
//! plain target keeps the PTX forward-compatible. The driver must be at least as new as this
//! nvcc (see scripts/cuda-toolkit.sh).
//!
//! It also sets `candle_embed_avx512` when the compiler is Rust 1.89 or newer, where the
//! `avx512f` target feature is stable: the similarity scan's dot kernel then has an AVX-512
//! clone (chosen at run time on CPUs that have it); older compilers (down to the MSRV) build
//! the AVX2 clone only.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(candle_embed_avx512)");
    if rustc_minor().is_some_and(|minor| minor >= 89) {
        println!("cargo:rustc-cfg=candle_embed_avx512");
    }
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    cuda::compile();
}

/// The minor version of the `rustc` building this crate (`1.M.p`), or None when it cannot be
/// read (then the AVX-512 clone is left out: never a build failure).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}

mod cuda {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const SOURCE_DIR: &str = "src/kernels/cuda";

    pub fn compile() {
        println!("cargo:rerun-if-changed={SOURCE_DIR}");
        for var in ["NVCC", "CUDA_HOME", "CUDA_COMPUTE_CAP"] {
            println!("cargo:rerun-if-env-changed={var}");
        }
        let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
        let nvcc = nvcc();
        let cap = compute_cap();
        println!("cargo:rustc-env=CANDLE_EMBED_CUDA_CAP={cap}");
        let gencode = format!("arch=compute_{cap},code=[sm_{cap},compute_{cap}]");
        let mut sources = Vec::new();
        for entry in std::fs::read_dir(SOURCE_DIR).expect(SOURCE_DIR) {
            let path = entry.expect(SOURCE_DIR).path();
            println!("cargo:rerun-if-changed={}", path.display());
            if path.extension().is_some_and(|x| x == "cu") {
                sources.push(path);
            }
        }
        sources.sort();
        for src in sources {
            let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
            let fatbin = out_dir.join(format!("{stem}.fatbin"));
            let status = Command::new(&nvcc)
                .args(["-fatbin", "-std=c++17", "-O3", "--expt-relaxed-constexpr"])
                .args(["-gencode", &gencode])
                .arg("-I")
                .arg(SOURCE_DIR)
                .arg(&src)
                .arg("-o")
                .arg(&fatbin)
                .status()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run nvcc ({}): {e}. The `cuda` feature needs the CUDA compiler; \
                         `eval \"$(bash scripts/cuda-toolkit.sh)\"` installs one from PyPI, or \
                         set NVCC",
                        nvcc.display()
                    )
                });
            assert!(status.success(), "nvcc failed on {}", src.display());
        }
    }

    fn nvcc() -> PathBuf {
        if let Some(n) = std::env::var_os("NVCC") {
            return n.into();
        }
        if let Some(home) = std::env::var_os("CUDA_HOME") {
            let n = Path::new(&home).join("bin").join("nvcc");
            if n.is_file() {
                return n;
            }
        }
        "nvcc".into()
    }

    fn compute_cap() -> String {
        let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_default();
        let cap = cap.trim().trim_end_matches(['a', 'f']);
        if cap.is_empty() {
            return "90".into();
        }
        assert!(
            cap.bytes().all(|b| b.is_ascii_digit()),
            "CUDA_COMPUTE_CAP must look like 90 or 90a, got {cap:?}"
        );
        cap.into()
    }
}
