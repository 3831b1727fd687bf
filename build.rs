//! Compiles `src/kernels/cuda/*.cu` to PTX when (and only when) the `cuda` feature is on, so the
//! default build never needs nvcc. nvcc: `$NVCC`, else `nvcc` on PATH (see scripts/build-cuda.sh).
//! Target: `compute_$CUDA_COMPUTE_CAP` (default 75, the oldest CUDA 13 supports); PTX is
//! JIT-compiled forward by the driver, so one build runs on any newer GPU.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    cuda::compile();
}

mod cuda {
    use std::path::PathBuf;
    use std::process::Command;

    pub fn compile() {
        println!("cargo:rerun-if-changed=src/kernels/cuda");
        println!("cargo:rerun-if-env-changed=NVCC");
        println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
        let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
        let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
        let cap = std::env::var("CUDA_COMPUTE_CAP")
            .ok()
            .map(|c| c.trim().trim_end_matches(['a', 'f']).to_string())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "75".into());
        let mut sources: Vec<PathBuf> = std::fs::read_dir("src/kernels/cuda")
            .expect("src/kernels/cuda")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cu"))
            .collect();
        sources.sort();
        for src in sources {
            let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
            let ptx = out_dir.join(format!("{stem}.ptx"));
            let status = Command::new(&nvcc)
                .args(["-ptx", "-std=c++17", "-O3", "--expt-relaxed-constexpr"])
                .arg(format!("-arch=compute_{cap}"))
                .arg(&src)
                .arg("-o")
                .arg(&ptx)
                .status()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run nvcc ({nvcc}): {e}. The `cuda` feature needs the CUDA \
                         compiler; `eval \"$(bash scripts/cuda-toolkit.sh)\"` installs one from \
                         PyPI, or set NVCC"
                    )
                });
            assert!(status.success(), "nvcc failed on {}", src.display());
        }
    }
}
