//! The Huffman tree of hierarchical softmax, built exactly as gensim builds it
//! (`_build_heap` + `_assign_binary_codes`), so every word gets gensim's code and points.
//!
//! gensim pushes the `V` leaves `(count, index)` on a Python `heapq`, then `V - 1` times pops
//! the two smallest and pushes their parent `(count1 + count2, V + i)` (left = first popped,
//! right = second). Items compare by count only, so which of equal counts pops first is decided
//! by `heapq`'s sift order; the heap below is a line-by-line port of CPython's `heapq`
//! (`heapify`, `heappush`, `heappop`, `_siftdown`, `_siftup`) to reproduce it. A word's code is
//! the path from the root (0 = left, 1 = right) and its points are the inner nodes on that path
//! (`node index - V`, rows of `syn1`).

use crate::alloc::try_with_capacity;
use crate::Result;

#[derive(Clone, Copy)]
struct Node {
    left: u32,
    right: u32,
}

/// CPython's `heapq` over `(count, node id)` items, ordered by `count` alone
/// (`Heapitem.__lt__`).
struct Heap {
    items: Vec<(u64, u32)>,
}

impl Heap {
    fn lt(a: (u64, u32), b: (u64, u32)) -> bool {
        a.0 < b.0
    }

    fn sift_down(&mut self, start: usize, mut pos: usize) {
        let new = self.items[pos];
        while pos > start {
            let parent = (pos - 1) >> 1;
            if Self::lt(new, self.items[parent]) {
                self.items[pos] = self.items[parent];
                pos = parent;
                continue;
            }
            break;
        }
        self.items[pos] = new;
    }

    fn sift_up(&mut self, mut pos: usize) {
        let end = self.items.len();
        let start = pos;
        let new = self.items[pos];
        let mut child = 2 * pos + 1;
        while child < end {
            let right = child + 1;
            if right < end && !Self::lt(self.items[child], self.items[right]) {
                child = right;
            }
            self.items[pos] = self.items[child];
            pos = child;
            child = 2 * pos + 1;
        }
        self.items[pos] = new;
        self.sift_down(start, pos);
    }

    fn heapify(&mut self) {
        for i in (0..self.items.len() / 2).rev() {
            self.sift_up(i);
        }
    }

    /// `heappop` on a heap of at least one item.
    fn pop(&mut self) -> (u64, u32) {
        let last = self.items.pop().unwrap_or_default();
        if self.items.is_empty() {
            return last;
        }
        let top = self.items[0];
        self.items[0] = last;
        self.sift_up(0);
        top
    }

    fn push(&mut self, item: (u64, u32)) {
        self.items.push(item);
        let last = self.items.len() - 1;
        self.sift_down(0, last);
    }
}

/// Every word's Huffman code and points, flattened: word `w`'s are
/// `codes[offsets[w]..offsets[w + 1]]` and `points[..]` over the same range.
#[derive(Debug, Clone, Default)]
pub struct Huffman {
    /// 0 / 1 per step from the root.
    pub codes: Vec<u8>,
    /// Inner node (row of `syn1`) per step.
    pub points: Vec<u32>,
    /// `V + 1` offsets into `codes` / `points`.
    pub offsets: Vec<usize>,
}

impl Huffman {
    /// gensim's tree over `counts` (word `i` has count `counts[i]`).
    pub fn build(counts: &[u64]) -> Result<Self> {
        let v = counts.len();
        let mut nodes: Vec<Node> = try_with_capacity(2 * v)?;
        nodes.resize(
            v,
            Node {
                left: u32::MAX,
                right: u32::MAX,
            },
        );
        let mut heap = Heap {
            items: try_with_capacity(v)?,
        };
        heap.items
            .extend(counts.iter().enumerate().map(|(i, &c)| (c, i as u32)));
        heap.heapify();
        for _ in 1..v {
            let (a, b) = (heap.pop(), heap.pop());
            let id = nodes.len() as u32;
            nodes.push(Node {
                left: a.1,
                right: b.1,
            });
            heap.push((a.0.saturating_add(b.0), id));
        }
        let mut paths: Vec<(Vec<u8>, Vec<u32>)> = vec![(Vec::new(), Vec::new()); v];
        if v > 1 {
            let mut stack = vec![(heap.items[0].1, Vec::<u8>::new(), Vec::<u32>::new())];
            while let Some((node, code, mut point)) = stack.pop() {
                if (node as usize) < v {
                    paths[node as usize] = (code, point);
                } else {
                    let n = nodes[node as usize];
                    point.push(node - v as u32);
                    let mut left = code.clone();
                    left.push(0);
                    let mut right = code;
                    right.push(1);
                    stack.push((n.left, left, point.clone()));
                    stack.push((n.right, right, point));
                }
            }
        }
        let mut h = Huffman {
            offsets: vec![0],
            ..Default::default()
        };
        for (code, point) in paths {
            h.codes.extend_from_slice(&code);
            h.points.extend_from_slice(&point);
            h.offsets.push(h.codes.len());
        }
        Ok(h)
    }

    /// Word `w`'s code and points.
    #[inline(always)]
    pub fn path(&self, w: u32) -> (&[u8], &[u32]) {
        let (a, b) = (self.offsets[w as usize], self.offsets[w as usize + 1]);
        (&self.codes[a..b], &self.points[a..b])
    }
}
