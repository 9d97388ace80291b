//! timeline.svg draws each memory controller's utilisation over time: a lane per controller
//! under the device lanes, its step area inside the lane and the plot, on a 0-100% scale.

use scenario::report::{timeline_svg, TimelineOptions};
use scenario::run::{run, RunOptions};

/// A 1080p30 camera on a 60 Hz display, one DRAM bank; `bandwidth` adds a memory controller.
fn scenario(bandwidth: Option<u64>) -> String {
    let mut t = String::from(
        "name = \"mem\"\nframes = 20\n\n[soc]\n\n[[soc.banks]]\nname = \"dram0\"\nkind = \"system\"\nbase = 0\nsize = \"1GiB\"\n\n",
    );
    if let Some(b) = bandwidth {
        t.push_str(&format!(
            "[[soc.memory_controllers]]\nname = \"ddr\"\nbanks = [\"dram0\"]\nbandwidth_bps = {b}\n\n"
        ));
    }
    t.push_str(
        r#"[[soc.iommus]]
name = "smmu0"

[[soc.devices]]
name = "camera0"
iommu = "smmu0"

[[soc.devices]]
name = "display0"
iommu = "smmu0"

[[nodes]]
name = "cam"
driver = "camera"
device = "camera0"
fps = 30

[[nodes]]
name = "screen"
driver = "display"
device = "display0"

[[links]]
from = "cam"
to = "screen"
buffers = 4
"#,
    );
    t
}

fn svg(text: &str) -> String {
    let out = run(
        &scenario::validate(text, "mem.toml").unwrap(),
        &RunOptions::default(),
    );
    timeline_svg(&out.trace, &TimelineOptions::default())
}

/// The numbers of `d`'s path commands (`M x y V y H x V y Z` repeated), as (x, y) pairs.
fn path_points(d: &str) -> (Vec<f64>, Vec<f64>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut cur = String::new();
    let mut cmd = ' ';
    let flush = |cmd: char, cur: &mut String, xs: &mut Vec<f64>, ys: &mut Vec<f64>| {
        let nums: Vec<f64> = cur.split_whitespace().map(|n| n.parse().unwrap()).collect();
        match (cmd, nums.as_slice()) {
            ('M', [x, y]) => {
                xs.push(*x);
                ys.push(*y)
            }
            ('H', [x]) => xs.push(*x),
            ('V', [y]) => ys.push(*y),
            _ => assert!(nums.is_empty(), "{cmd} {nums:?}"),
        }
        cur.clear();
    };
    for c in d.chars() {
        if c.is_ascii_alphabetic() {
            flush(cmd, &mut cur, &mut xs, &mut ys);
            cmd = c;
        } else {
            cur.push(c);
        }
    }
    flush(cmd, &mut cur, &mut xs, &mut ys);
    (xs, ys)
}

fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let k = format!("{name}=\"");
    let i = tag.find(&k).unwrap() + k.len();
    &tag[i..i + tag[i..].find('"').unwrap()]
}

#[test]
fn the_timeline_draws_a_utilisation_lane_per_memory_controller() {
    // 259.2 MB/s: a capture and a scanout of 3.1 MB every 33.3 ms, 72% busy.
    let s = svg(&scenario(Some(259_200_000)));
    let lane = s
        .lines()
        .find(|l| l.contains("class=\"lane utilisation\""))
        .expect("a utilisation lane");
    assert_eq!(attr(lane, "data-controller"), "ddr");
    assert!(lane.contains(">memory ddr</text>"), "{lane}");
    assert!(
        lane.contains(">100%</text>"),
        "the scale is in percent: {lane}"
    );
    let lane_y: f64 = attr(lane, "y").parse().unwrap();
    let lane_h: f64 = attr(lane, "height").parse().unwrap();
    let (left, plot_w): (f64, f64) = (
        attr(lane, "x").parse().unwrap(),
        attr(lane, "width").parse().unwrap(),
    );
    // Below every device lane, above the time axis (whose labels are in ms).
    let device_lanes: Vec<f64> = s
        .lines()
        .filter(|l| l.contains("<g class=\"lane\""))
        .map(|l| attr(l, "y").parse::<f64>().unwrap())
        .collect();
    assert!(!device_lanes.is_empty());
    assert!(
        device_lanes.iter().all(|&y| y < lane_y),
        "{device_lanes:?} {lane_y}"
    );
    assert!(s.contains(" ms</text>"));
    let path = s
        .lines()
        .find(|l| l.contains("<path class=\"utilisation\""))
        .expect("the utilisation area");
    let (xs, ys) = path_points(attr(path, "d"));
    assert!(xs.len() >= 10, "{path}");
    // Inside the lane and the plot.
    assert!(
        xs.iter()
            .all(|&x| x >= left - 0.01 && x <= left + plot_w + 0.01),
        "{xs:?}"
    );
    assert!(
        ys.iter().all(|&y| y >= lane_y && y <= lane_y + lane_h),
        "{ys:?}"
    );
    // The area has height where the controller was busy: about 72% of the lane's room.
    let base = ys.iter().cloned().fold(f64::MIN, f64::max);
    let top = ys.iter().cloned().fold(f64::MAX, f64::min);
    let frac = (base - top) / (lane_h - 6.0);
    assert!((frac - 0.72).abs() < 0.05, "{frac}");
    // Not oversubscribed: no 100% line.
    assert!(!s.contains("class=\"full\""));
}

#[test]
fn an_oversubscribed_controller_scales_to_its_peak_with_a_line_at_100_percent() {
    // A third of the bandwidth: every transfer overlaps the next, utilisation above 1.
    let s = svg(&scenario(Some(86_400_000)));
    let lane = s
        .lines()
        .find(|l| l.contains("class=\"lane utilisation\""))
        .unwrap();
    let top: f64 = lane
        .split(">")
        .find_map(|p| p.strip_suffix("%</text"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(top > 100.0, "{lane}");
    assert!(s.contains("class=\"full\""), "a dashed line at 100%");
}

#[test]
fn without_a_memory_controller_there_is_no_utilisation_lane() {
    let s = svg(&scenario(None));
    assert!(!s.contains("utilisation"), "{s}");
    assert!(s.contains("<g class=\"lane\""));
}
