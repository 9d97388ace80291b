//! One device job: the bytes a node moves for one frame, and what its checks found.
//!
//! A job is planned by the scheduler (which buffers, mapped for which device) and executed here,
//! on the scheduler's thread or, with `--threads`, on the device's own thread. Execution only
//! touches the job's own mappings, so jobs of different devices may run at once: the buffer
//! protocol of the scheduler (a buffer is written by one job, then read by its consumers, then
//! free) is what keeps them apart, as vb2's queue ownership does in the kernel.

use super::bytes::{isp_transform, luma_to_xrgb, render_from, Hasher, PatternGen, CHUNK};
use super::dmaio::Mapped;
use crate::schema::{IspTransform, TestPattern};
use dma::DmaApi;
use std::cell::RefCell;

/// What a job does with its bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum JobKind {
    /// A camera writes a test pattern.
    Source {
        pattern: TestPattern,
        seed: u64,
        frame: u64,
    },
    /// An ISP transforms its input plane by plane.
    Transform(IspTransform),
    /// A GPU composites its first input into its output.
    Composite,
    /// A display or encoder reads and verifies.
    Sink,
}

/// One buffer a job reads.
pub(crate) struct JobInput {
    pub map: Mapped,
    pub planes: Vec<(u64, u64)>,
    pub expected: u64,
}

/// One buffer a job writes.
pub(crate) struct JobOutput {
    pub map: Mapped,
    pub planes: Vec<(u64, u64)>,
    /// Bytes per line of each plane (for patterns).
    pub bytes_per_line: Vec<u64>,
}

/// A planned job.
pub(crate) struct JobIo {
    pub kind: JobKind,
    pub inputs: Vec<JobInput>,
    pub outputs: Vec<JobOutput>,
}

/// What executing a job found; the mappings come back for unmapping.
pub(crate) struct JobResult {
    /// Per input: whether its bytes hashed to what their producer wrote.
    pub inputs_ok: Vec<bool>,
    /// Per output: the checksum of what was written.
    pub out_sums: Vec<u64>,
    /// A DMA that failed (fault, mask), if any.
    pub error: Option<String>,
    pub inputs: Vec<Mapped>,
    pub outputs: Vec<Mapped>,
}

thread_local! {
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> = RefCell::new((vec![0u8; CHUNK], vec![0u8; CHUNK * 4]));
}

fn total(planes: &[(u64, u64)]) -> u64 {
    planes.iter().map(|p| p.1).sum()
}

impl JobIo {
    /// Moves the job's bytes (module doc).
    pub(crate) fn execute(self, dma: &DmaApi) -> JobResult {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let (a, b) = &mut *s;
            let mut inputs_ok = Vec::new();
            let mut out_sums = Vec::new();
            let error = self.run(dma, a, b, &mut inputs_ok, &mut out_sums).err();
            inputs_ok.resize(self.inputs.len(), false);
            out_sums.resize(self.outputs.len(), 0);
            JobResult {
                inputs_ok,
                out_sums,
                error,
                inputs: self.inputs.into_iter().map(|i| i.map).collect(),
                outputs: self.outputs.into_iter().map(|o| o.map).collect(),
            }
        })
    }

    fn run(
        &self,
        dma: &DmaApi,
        a: &mut [u8],
        b: &mut [u8],
        ok: &mut Vec<bool>,
        sums: &mut Vec<u64>,
    ) -> Result<(), String> {
        let e = |e: dma::DmaError| e.to_string();
        match self.kind {
            JobKind::Source {
                pattern,
                seed,
                frame,
            } => {
                for o in &self.outputs {
                    let mut h = Hasher::new();
                    for (p, &(off, len)) in o.planes.iter().enumerate() {
                        let bpl = o.bytes_per_line.get(p).copied().unwrap_or(len);
                        let gen = PatternGen::new(pattern, seed, frame, p, bpl);
                        let mut at = 0u64;
                        while at < len {
                            let n = (len - at).min(CHUNK as u64) as usize;
                            gen.fill(at as usize, &mut a[..n]);
                            h.update(&a[..n]);
                            o.map.write(dma, off + at, &a[..n]).map_err(e)?;
                            at += n as u64;
                        }
                    }
                    sums.push(h.finish());
                }
            }
            JobKind::Sink => {
                for i in &self.inputs {
                    ok.push(verify(dma, i, a)?);
                }
            }
            JobKind::Transform(t) => {
                let Some(first) = self.inputs.first() else {
                    return Ok(());
                };
                let same = self.outputs.iter().all(|o| o.planes == first.planes);
                if same {
                    let mut hin = Hasher::new();
                    let mut hout: Vec<Hasher> =
                        self.outputs.iter().map(|_| Hasher::new()).collect();
                    for (p, &(off, len)) in first.planes.iter().enumerate() {
                        let mut at = 0u64;
                        while at < len {
                            let n = (len - at).min(CHUNK as u64) as usize;
                            first.map.read(dma, off + at, &mut a[..n]).map_err(e)?;
                            hin.update(&a[..n]);
                            isp_transform(t, p, at as usize, &mut a[..n]);
                            for (o, h) in self.outputs.iter().zip(&mut hout) {
                                h.update(&a[..n]);
                                o.map.write(dma, off + at, &a[..n]).map_err(e)?;
                            }
                            at += n as u64;
                        }
                    }
                    ok.push(hin.finish() == first.expected);
                    sums.extend(hout.iter().map(Hasher::finish));
                } else {
                    ok.push(verify(dma, first, a)?);
                    self.render_outputs(dma, first.expected, a, sums)?;
                }
                for i in &self.inputs[1..] {
                    ok.push(verify(dma, i, a)?);
                }
            }
            JobKind::Composite => {
                let Some(first) = self.inputs.first() else {
                    return Ok(());
                };
                let expand = first.planes.len() == 2
                    && self
                        .outputs
                        .iter()
                        .all(|o| o.planes.len() == 1 && o.planes[0].1 == first.planes[0].1 * 4);
                if expand {
                    let mut hin = Hasher::new();
                    let mut hout: Vec<Hasher> =
                        self.outputs.iter().map(|_| Hasher::new()).collect();
                    let (loff, llen) = first.planes[0];
                    let mut at = 0u64;
                    while at < llen {
                        let n = (llen - at).min(CHUNK as u64) as usize;
                        first.map.read(dma, loff + at, &mut a[..n]).map_err(e)?;
                        hin.update(&a[..n]);
                        luma_to_xrgb(&a[..n], &mut b[..n * 4]);
                        for (o, h) in self.outputs.iter().zip(&mut hout) {
                            h.update(&b[..n * 4]);
                            o.map
                                .write(dma, o.planes[0].0 + at * 4, &b[..n * 4])
                                .map_err(e)?;
                        }
                        at += n as u64;
                    }
                    let (coff, clen) = first.planes[1];
                    read_hash(dma, first, coff, clen, a, &mut hin)?;
                    ok.push(hin.finish() == first.expected);
                    sums.extend(hout.iter().map(Hasher::finish));
                } else {
                    ok.push(verify(dma, first, a)?);
                    self.render_outputs(dma, first.expected, a, sums)?;
                }
                for i in &self.inputs[1..] {
                    ok.push(verify(dma, i, a)?);
                }
            }
        }
        Ok(())
    }

    fn render_outputs(
        &self,
        dma: &DmaApi,
        seed: u64,
        a: &mut [u8],
        sums: &mut Vec<u64>,
    ) -> Result<(), String> {
        for o in &self.outputs {
            let mut h = Hasher::new();
            let mut pos = 0usize;
            for &(off, len) in &o.planes {
                let mut at = 0u64;
                while at < len {
                    let n = (len - at).min(CHUNK as u64) as usize;
                    render_from(seed, pos, &mut a[..n]);
                    h.update(&a[..n]);
                    o.map
                        .write(dma, off + at, &a[..n])
                        .map_err(|e| e.to_string())?;
                    at += n as u64;
                    pos += n;
                }
            }
            sums.push(h.finish());
        }
        Ok(())
    }
}

fn read_hash(
    dma: &DmaApi,
    i: &JobInput,
    off: u64,
    len: u64,
    a: &mut [u8],
    h: &mut Hasher,
) -> Result<(), String> {
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(CHUNK as u64) as usize;
        i.map
            .read(dma, off + at, &mut a[..n])
            .map_err(|e| e.to_string())?;
        h.update(&a[..n]);
        at += n as u64;
    }
    Ok(())
}

/// Reads a whole input and compares its checksum.
fn verify(dma: &DmaApi, i: &JobInput, a: &mut [u8]) -> Result<bool, String> {
    let mut h = Hasher::new();
    for &(off, len) in &i.planes {
        read_hash(dma, i, off, len, a, &mut h)?;
    }
    Ok(h.finish() == i.expected)
}

/// Bytes a job reads and writes, for the time model.
pub(crate) fn job_bytes(io: &JobIo) -> (u64, u64) {
    let r = io.inputs.iter().map(|i| total(&i.planes)).sum();
    let w = io.outputs.iter().map(|o| total(&o.planes)).sum();
    (r, w)
}
