//! Coherent allocations, for one device and for a set of devices at once.
//!
//! C header: `include/linux/dma-mapping.h` (`dma_alloc_attrs()`); C side: `kernel/dma/direct.c`
//! (`dma_direct_alloc()`), `kernel/dma/contiguous.c` (CMA), `drivers/iommu/dma-iommu.c`
//! (`iommu_dma_alloc_remap()`), and seed 002's proposed `dma_alloc_attrs_for_devices()`.
//!
//! # The concept
//! `dma_alloc_attrs()` returns memory a device can reach, already mapped for it, that the CPU
//! may access without cache maintenance (uncached on a non-coherent SoC). Seed 002 asks for the
//! same for **several devices at once**, so that an exporter can allocate a buffer every
//! importer can use: [`DmaApi::alloc_attrs_for_devices`]. It returns one [`DmaBuffer`] with one
//! [`DmaHandle`] (DMA address and mapped sg table) per device.
//!
//! # How the constraints combine
//! 1. **Mask**: devices without an IOMMU reach physical memory directly, so the memory must lie
//!    below the AND of their coherent DMA masks. A device behind an IOMMU constrains only its IOVA
//!    (allocated below its mask when it is mapped).
//! 2. **Contiguity**: physically contiguous if any device lacks an IOMMU or `needs_contiguous`,
//!    or with `DMA_ATTR_FORCE_CONTIGUOUS`; else scattered pages (largest orders first, as
//!    `__iommu_dma_alloc_pages()`; order 0 only with `DMA_ATTR_ALLOC_SINGLE_PAGES`).
//! 3. **Alignment**: the least common multiple of the devices' alignments (powers of two, so the
//!    largest), at least a page; physical for contiguous memory, IOVA for every IOMMU mapping.
//! 4. **Segments**: the sg table is built with the strictest max segment size and boundary of all
//!    devices; a device whose `max_segments` it exceeds fails the allocation.
//! 5. **Bank**: a device may name a bank (seed 002's luma/chroma split); two devices naming
//!    different banks fail. A carveout or device-local bank is served by its pool (no struct pages).
//! 6. Contiguous memory comes from a CMA region (first) or one buddy block; the memory is zeroed.
//!
//! Any failure names the device and the constraint ([`DmaError::ConstraintNotMet`]), and leaves
//! nothing allocated or mapped.
//!
//! # Ownership
//! A [`DmaBuffer`] is freed with [`DmaApi::free_attrs`]; one dropped without it leaks its memory
//! and its mappings (which [`Checker::check_leaks`](crate::Checker::check_leaks) reports), as a
//! driver that forgets `dma_free_attrs()` does.

use crate::attrs::{DmaAttrs, DmaDirection};
use crate::debug::rules::UnmapRequest;
use crate::debug::MappingKind;
use crate::error::DmaError;
use crate::mapping::DmaApi;
use crate::sg::{SegmentLimits, SgBacking, SgMapping, SgTable};
use soc::{AllocRequest, Bank, BankKind, Device, Page, PhysAddr, MAX_ORDER, PAGE_SHIFT, PAGE_SIZE};

mod buffer;

use buffer::Memory;
pub use buffer::{DeviceNeeds, DmaBuffer, DmaHandle};

fn not_met(dev: &Device, constraint: String, reason: String) -> DmaError {
    DmaError::ConstraintNotMet {
        device: dev.name().to_string(),
        constraint,
        reason,
    }
}

impl DmaApi {
    /// `dma_alloc_attrs()`: `size` bytes of zeroed memory for one device, mapped for it.
    ///
    /// ```
    /// # let soc = soc::Soc::new(soc::SocDesc::default_soc()).unwrap();
    /// let api = dma::DmaApi::new(&soc);
    /// let display = api.device("display0").unwrap();
    /// let buf = api.alloc_attrs(&display, 1 << 20, dma::DmaAttrs::NONE).unwrap();
    /// assert!(buf.is_contiguous(), "no IOMMU: contiguous");
    /// assert!(buf.dma_addr("display0").unwrap().0 < 1 << 30, "below the 30-bit mask");
    /// api.free_attrs(buf).unwrap();
    /// ```
    pub fn alloc_attrs(
        &self,
        dev: &Device,
        size: u64,
        attrs: DmaAttrs,
    ) -> Result<DmaBuffer, DmaError> {
        self.alloc_attrs_for_devices(&[DeviceNeeds::new(dev)], size, attrs)
    }

    /// Seed 002's `dma_alloc_attrs_for_devices()`: one buffer every device can use, with one
    /// handle per device. See the module doc for how the constraints combine.
    ///
    /// Errors: no device, a device given twice, size 0, a bad alignment (`EINVAL`); an unknown
    /// bank; [`DmaError::ConstraintNotMet`] naming the device and constraint (`ENOMEM`); a mapping
    /// error naming the device.
    pub fn alloc_attrs_for_devices(
        &self,
        needs: &[DeviceNeeds<'_>],
        size: u64,
        attrs: DmaAttrs,
    ) -> Result<DmaBuffer, DmaError> {
        let plan = self.plan(needs, size, attrs)?;
        let memory = self.alloc_memory(&plan, needs, attrs)?;
        let ranges = memory_ranges(&memory, plan.alloc_size);
        let backing = if matches!(memory, Memory::Pool { .. }) {
            SgBacking::Resource
        } else {
            SgBacking::Pages
        };
        let sgt = match SgTable::from_ranges(&ranges, backing, plan.limits) {
            Ok(t) => t,
            Err(e) => {
                let _ = self.release(&memory);
                return Err(e);
            }
        };
        let mut buf = DmaBuffer {
            soc: self.soc().clone(),
            size,
            attrs,
            memory,
            sgt,
            handles: Vec::with_capacity(needs.len()),
            uncached: plan.uncached || attrs.contains(DmaAttrs::WRITE_COMBINE),
        };
        // Zero it as the CPU would, leaving no cache line behind (`arch_dma_prep_coherent()`).
        for &(pa, len) in &ranges {
            let zeroed = self
                .soc()
                .cpu()
                .invalidate(pa, len)
                .and_then(|()| self.soc().mem().fill(pa, len, 0));
            if let Err(e) = zeroed {
                let _ = self.release(&buf.memory);
                return Err(e.into());
            }
        }
        for n in needs {
            let mut t = buf.sgt.dup();
            let mapped = self.map_entries(
                n.device,
                t.entries(),
                DmaDirection::Bidirectional,
                attrs,
                MappingKind::Coherent,
                plan.align,
            );
            match mapped {
                Ok((_, segments)) => {
                    t.mapping = Some(SgMapping {
                        device: n.device.name().to_string(),
                        dir: DmaDirection::Bidirectional,
                        attrs,
                        segments,
                    });
                    buf.handles.push(DmaHandle {
                        device: n.device.name().to_string(),
                        sgt: t,
                    });
                }
                Err(e) => {
                    let _ = self.free_attrs(buf);
                    return Err(e);
                }
            }
        }
        Ok(buf)
    }

    /// `dma_free_attrs()`: unmaps the buffer from every device and frees its memory. Memory still
    /// mapped by someone else is reported (and in strict mode refused, then leaked).
    pub fn free_attrs(&self, buf: DmaBuffer) -> Result<(), DmaError> {
        let mut first_err = None;
        for h in &buf.handles {
            let res = self.device(&h.device).and_then(|dev| {
                let req = UnmapRequest {
                    device: &h.device,
                    addr: h.dma_addr(),
                    size: buf.sgt.size(),
                    kind: MappingKind::Coherent,
                    dir: DmaDirection::Bidirectional,
                    nents: None,
                };
                self.unmap_core(&dev, &req, DmaAttrs::NONE)
            });
            if let Err(e) = res {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = self.release(&buf.memory) {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Returns memory to its allocator, through the SoC so the checker sees the free.
    fn release(&self, memory: &Memory) -> Result<(), DmaError> {
        match memory {
            Memory::Cma {
                region,
                addr,
                count,
            } => {
                let len = count << PAGE_SHIFT;
                self.checker().check_free_strict(*addr, len)?;
                self.checker().report_free(*addr, len);
                Ok(self.soc().pages().cma_release(region, *addr, *count)?)
            }
            Memory::Pages(pages) => {
                let mut first_err = None;
                for &p in pages {
                    if let Err(e) = self.free_pages(p) {
                        first_err.get_or_insert(e);
                    }
                }
                first_err.map_or(Ok(()), Err)
            }
            Memory::Pool { bank, addr, size } => {
                self.checker().check_free_strict(*addr, *size)?;
                Ok(self.soc().free_pool(*bank, *addr, *size)?)
            }
        }
    }
}

/// The combined constraints of a request.
struct Plan<'a> {
    alloc_size: u64,
    align: u64,
    limit: u64,
    /// The direct-mapped device with the smallest coherent mask (the one a mask failure names).
    binding: Option<&'a Device>,
    contiguous: bool,
    bank: Option<&'a Bank>,
    limits: SegmentLimits,
    uncached: bool,
}

impl DmaApi {
    fn plan<'a>(
        &'a self,
        needs: &[DeviceNeeds<'a>],
        size: u64,
        attrs: DmaAttrs,
    ) -> Result<Plan<'a>, DmaError> {
        if needs.is_empty() {
            return Err(DmaError::InvalidArgument(
                "dma_alloc_attrs_for_devices: no device".into(),
            ));
        }
        if size == 0 {
            return Err(DmaError::ZeroSize("dma_alloc_attrs_for_devices"));
        }
        let pages = soc::pages_for(size)
            .filter(|&p| p <= 1 << 40)
            .ok_or_else(|| {
                DmaError::InvalidArgument(format!(
                    "allocation size {size:#x} is larger than any memory"
                ))
            })?;
        let alloc_size = pages << PAGE_SHIFT;
        let mut align = PAGE_SIZE;
        let mut bank: Option<(&DeviceNeeds<'_>, &Bank)> = None;
        let mut limits = SegmentLimits::UNLIMITED;
        for (i, n) in needs.iter().enumerate() {
            let dev = n.device;
            if needs[..i].iter().any(|o| o.device.name() == dev.name()) {
                return Err(DmaError::InvalidArgument(format!(
                    "device {} is listed twice",
                    dev.name()
                )));
            }
            if n.align != 0 && !n.align.is_power_of_two() {
                return Err(not_met(
                    dev,
                    format!("alignment {:#x}", n.align),
                    "not a power of two".into(),
                ));
            }
            // lcm of powers of two is the largest.
            align = align.max(n.align);
            if let Some(name) = n.bank {
                let b = self.soc().mem().bank_by_name(name)?;
                match bank {
                    Some((o, ob)) if ob.id() != b.id() => {
                        return Err(not_met(
                            dev,
                            format!("bank {name}"),
                            format!("{} needs bank {}", o.device.name(), ob.name()),
                        ))
                    }
                    _ => bank = Some((n, b)),
                }
            }
            limits = limits.strictest(SegmentLimits::of_device(dev)?);
        }
        let direct: Vec<&Device> = needs
            .iter()
            .map(|n| n.device)
            .filter(|d| d.iommu_domain().is_none())
            .collect();
        let limit = direct
            .iter()
            .fold(u64::MAX, |m, d| m & d.coherent_dma_mask());
        let binding = direct.iter().copied().min_by_key(|d| d.coherent_dma_mask());
        let bank = bank.map(|(_, b)| b);
        for d in &direct {
            let mask = d.coherent_dma_mask();
            let reachable = match bank {
                Some(b) => b.base().0 <= mask,
                None => self
                    .soc()
                    .mem()
                    .banks()
                    .iter()
                    .any(|b| b.kind() == BankKind::System && b.base().0 <= mask),
            };
            if !reachable {
                let reason = match bank {
                    Some(b) => format!("no memory below it in bank {}", b.name()),
                    None => "no system RAM below it".to_string(),
                };
                return Err(not_met(d, format!("DMA mask {mask:#x}"), reason));
            }
        }
        for n in needs.iter().filter(|n| n.device.iommu_domain().is_some()) {
            let mask = n.device.dma_mask();
            if mask < alloc_size {
                return Err(not_met(
                    n.device,
                    format!("DMA mask {mask:#x}"),
                    format!(
                        "its IOVA space is smaller than the {} buffer",
                        soc::human_size(alloc_size)
                    ),
                ));
            }
        }
        let contiguous = !direct.is_empty()
            || needs.iter().any(|n| n.device.needs_contiguous())
            || attrs.contains(DmaAttrs::FORCE_CONTIGUOUS);
        Ok(Plan {
            alloc_size,
            align,
            limit,
            binding,
            contiguous,
            bank,
            limits,
            uncached: needs.iter().any(|n| !n.device.is_coherent()),
        })
    }

    fn alloc_memory(
        &self,
        plan: &Plan<'_>,
        needs: &[DeviceNeeds<'_>],
        attrs: DmaAttrs,
    ) -> Result<Memory, DmaError> {
        let blame = plan.binding.unwrap_or(needs[0].device);
        let mask_txt = |what: &str| match plan.binding {
            Some(d) => format!("{what} below DMA mask {:#x}", d.coherent_dma_mask()),
            None => what.to_string(),
        };
        let where_txt = plan
            .bank
            .map_or_else(String::new, |b| format!(" in bank {}", b.name()));
        let size_txt = soc::human_size(plan.alloc_size);
        if let Some(b) = plan.bank.filter(|b| b.kind() != BankKind::System) {
            let pool = self
                .soc()
                .pool(b.id())
                .ok_or_else(|| soc::SocError::UnknownBank(b.name().to_string()))?;
            return match pool.alloc_below(plan.alloc_size, plan.align, plan.limit) {
                Ok(addr) => Ok(Memory::Pool {
                    bank: b.id(),
                    addr,
                    size: plan.alloc_size,
                }),
                Err(e) => Err(not_met(
                    blame,
                    mask_txt(&format!("{size_txt} of {}", b.kind())),
                    format!("{e}"),
                )),
            };
        }
        let pages = plan.alloc_size >> PAGE_SHIFT;
        if plan.contiguous {
            return self.alloc_contiguous(pages, plan).ok_or_else(|| {
                not_met(
                    blame,
                    mask_txt(&format!("{size_txt} of contiguous memory")),
                    format!("no such free range{where_txt}"),
                )
            });
        }
        let single = attrs.contains(DmaAttrs::ALLOC_SINGLE_PAGES);
        self.alloc_scattered(pages, plan, single).ok_or_else(|| {
            not_met(
                blame,
                format!("{size_txt} of memory"),
                format!("out of pages{where_txt}"),
            )
        })
    }

    fn alloc_contiguous(&self, pages: u64, plan: &Plan<'_>) -> Option<Memory> {
        let align_order = (plan.align >> PAGE_SHIFT).trailing_zeros();
        let cma_first = pages > 1;
        let try_cma = || {
            for r in self.soc().pages().cma_regions() {
                if plan.bank.is_some_and(|b| b.id() != r.bank) || r.base.0 > plan.limit {
                    continue;
                }
                if let Ok(addr) = self.soc().pages().cma_alloc(&r.name, pages, align_order) {
                    if addr.0 + ((pages << PAGE_SHIFT) - 1) <= plan.limit {
                        return Some(Memory::Cma {
                            region: r.name,
                            addr,
                            count: pages,
                        });
                    }
                    let _ = self.soc().pages().cma_release(&r.name, addr, pages);
                }
            }
            None
        };
        let try_buddy = || {
            let order = (64 - (pages - 1).leading_zeros()).max(align_order);
            if order > MAX_ORDER {
                return None;
            }
            let mut req = AllocRequest::new(order);
            if let Some(b) = plan.bank {
                req = req.in_bank(b.id());
            }
            if plan.limit != u64::MAX {
                req = req.below(plan.limit);
            }
            self.soc()
                .pages()
                .alloc_pages(&req)
                .ok()
                .map(|p| Memory::Pages(vec![p]))
        };
        if cma_first {
            try_cma().or_else(try_buddy)
        } else {
            try_buddy().or_else(try_cma)
        }
    }

    fn alloc_scattered(&self, pages: u64, plan: &Plan<'_>, single: bool) -> Option<Memory> {
        let mut got: Vec<Page> = Vec::new();
        let mut left = pages;
        let mut order = if single { 0 } else { MAX_ORDER };
        while left > 0 {
            order = order.min(63 - left.leading_zeros());
            let mut req = AllocRequest::new(order);
            if let Some(b) = plan.bank {
                req = req.in_bank(b.id());
            }
            match self.soc().pages().alloc_pages(&req) {
                Ok(p) => {
                    left -= 1 << order;
                    got.push(p);
                }
                Err(_) if order > 0 => order -= 1,
                Err(_) => {
                    for p in got {
                        let _ = self.soc().pages().free_pages(p);
                    }
                    return None;
                }
            }
        }
        Some(Memory::Pages(got))
    }
}

/// The physical ranges holding the first `size` bytes of the memory.
fn memory_ranges(memory: &Memory, size: u64) -> Vec<(PhysAddr, u64)> {
    match memory {
        Memory::Cma { addr, .. } | Memory::Pool { addr, .. } => vec![(*addr, size)],
        Memory::Pages(pages) => {
            let mut left = size;
            let mut out = Vec::with_capacity(pages.len());
            for p in pages {
                if left == 0 {
                    break;
                }
                let n = p.size().min(left);
                out.push((p.addr, n));
                left -= n;
            }
            out
        }
    }
}
