//! Streaming (non-temporal) row copies for outputs larger than the caches.
//!
//! An ordinary store to a line that is not in the cache first reads the line from memory
//! (read-for-ownership), then writes it back when it is evicted: a gather into a large output
//! moves each output byte three times (row read, line read, line write). A streaming store
//! writes whole lines through the write-combining buffers without reading them, so the same
//! gather moves each byte twice. The output then is not in the cache afterwards, which is why
//! only outputs past a size threshold ([`super::tuning`]) take this path.
//!
//! Streaming stores need aligned destinations: the wider of 32 bytes (AVX) and 16 (SSE2, every
//! x86-64) that both the output's start and the row size are multiples of, so every row starts
//! aligned. (AVX-512's 64-byte stores fill a write-combining line no better than two 32-byte
//! ones, and their intrinsics need Rust 1.89, past the crate's MSRV of 1.85.) They are weakly ordered: a thread ends its rows with [`fence`]
//! before it reports them done. Off x86-64 nothing streams ([`width_for`] is `None`).

/// The width of the streaming stores a copy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamWidth {
    /// 16-byte SSE2 stores (`movntdq xmm`).
    W16,
    /// 32-byte AVX stores (`vmovntdq ymm`).
    W32,
}

impl StreamWidth {
    /// Bytes per store.
    pub fn bytes(self) -> usize {
        match self {
            StreamWidth::W16 => 16,
            StreamWidth::W32 => 32,
        }
    }
}

/// The widest streaming store this CPU has for rows of `row_bytes` written back to back from
/// `dst`, or `None` when no width divides both (or off x86-64).
pub fn width_for(dst: *const u8, row_bytes: usize) -> Option<StreamWidth> {
    #[cfg(target_arch = "x86_64")]
    {
        let fits = |w: usize| (dst as usize) % w == 0 && row_bytes % w == 0 && row_bytes > 0;
        if fits(32) && std::is_x86_feature_detected!("avx") {
            return Some(StreamWidth::W32);
        }
        if fits(16) {
            return Some(StreamWidth::W16);
        }
    }
    let _ = (dst, row_bytes);
    None
}

/// Copy `bytes` bytes from `src` to `dst` with streaming stores of width `w`.
///
/// # Safety
/// `src` is readable and `dst` writable for `bytes` bytes, the ranges do not overlap, `dst` is
/// aligned to `w` and `bytes` is a multiple of it, and `w` came from [`width_for`] on this CPU.
#[inline]
pub unsafe fn copy_row(src: *const u8, dst: *mut u8, bytes: usize, w: StreamWidth) {
    #[cfg(target_arch = "x86_64")]
    match w {
        StreamWidth::W16 => x86::copy16(src, dst, bytes),
        StreamWidth::W32 => x86::copy32(src, dst, bytes),
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = w;
        std::ptr::copy_nonoverlapping(src, dst, bytes);
    }
}

/// Order this thread's streaming stores before its later stores (`sfence`): call it after the
/// last row, before the work is reported done.
#[inline]
pub fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no preconditions (SSE, part of x86-64).
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// SSE2 (baseline): four 16-byte stores per 64-byte line, then any 16-byte tail.
    pub unsafe fn copy16(src: *const u8, dst: *mut u8, bytes: usize) {
        let mut off = 0;
        while off + 64 <= bytes {
            let s = src.add(off) as *const __m128i;
            let d = dst.add(off) as *mut __m128i;
            let (a, b) = (_mm_loadu_si128(s), _mm_loadu_si128(s.add(1)));
            let (c, e) = (_mm_loadu_si128(s.add(2)), _mm_loadu_si128(s.add(3)));
            _mm_stream_si128(d, a);
            _mm_stream_si128(d.add(1), b);
            _mm_stream_si128(d.add(2), c);
            _mm_stream_si128(d.add(3), e);
            off += 64;
        }
        while off < bytes {
            _mm_stream_si128(
                dst.add(off) as *mut __m128i,
                _mm_loadu_si128(src.add(off) as *const __m128i),
            );
            off += 16;
        }
    }

    #[target_feature(enable = "avx")]
    pub unsafe fn copy32(src: *const u8, dst: *mut u8, bytes: usize) {
        let mut off = 0;
        while off + 64 <= bytes {
            let s = src.add(off) as *const __m256i;
            let d = dst.add(off) as *mut __m256i;
            let (a, b) = (_mm256_loadu_si256(s), _mm256_loadu_si256(s.add(1)));
            _mm256_stream_si256(d, a);
            _mm256_stream_si256(d.add(1), b);
            off += 64;
        }
        if off < bytes {
            _mm256_stream_si256(
                dst.add(off) as *mut __m256i,
                _mm256_loadu_si256(src.add(off) as *const __m256i),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every width copies exactly, at every aligned offset and size it accepts.
    #[test]
    fn streaming_copies_are_exact() {
        let src: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut buf = vec![0u8; 4096 + 128];
        let base = buf.as_mut_ptr() as usize;
        for bytes in [16usize, 32, 48, 64, 80, 192, 512, 2048] {
            for start in (0..128).step_by(16) {
                let dst = (base + start) as *mut u8;
                let Some(w) = width_for(dst, bytes) else {
                    continue;
                };
                assert_eq!(bytes % w.bytes(), 0);
                assert_eq!((dst as usize) % w.bytes(), 0);
                buf.fill(0);
                // SAFETY: as the contract asks: in bounds, aligned, width from this CPU.
                unsafe { copy_row(src.as_ptr(), dst, bytes, w) };
                fence();
                assert_eq!(&buf[start..start + bytes], &src[..bytes]);
                assert!(buf[..start].iter().all(|&b| b == 0));
                assert!(buf[start + bytes..].iter().all(|&b| b == 0));
            }
        }
        // an unaligned destination or row size streams nothing
        #[cfg(target_arch = "x86_64")]
        {
            assert!(width_for((base + 4) as *const u8, 512).is_none() || base % 16 == 12);
            assert!(width_for(((base + 15) & !15) as *const u8, 36).is_none());
        }
    }
}
