//! `dmabuf soc`: the bundled machines listed, and each printed as TOML that pastes into a
//! scenario's `[soc]` unchanged.

use std::process::Command;

fn dmabuf(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_soc_lists_every_bundled_machine_with_a_line() {
    let (code, out, err) = dmabuf(&["soc"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["default", "rk3588", "imx8mp", "rpi5"], "{out}");
    assert!(
        out.lines().all(|l| l.split_whitespace().count() > 3),
        "{out}"
    );
}

#[test]
fn test_soc_name_output_pastes_into_a_scenario_and_is_the_bundled_machine() {
    for m in soc::bundled::machines() {
        let (code, printed, err) = dmabuf(&["soc", m.name]);
        assert_eq!(code, 0, "{}: {err}", m.name);
        let desc = soc::bundled::machine(m.name).unwrap();
        let text = format!(
            "name = \"pasted\"\nframes = 2\n\n[[nodes]]\nname = \"cam\"\ndriver = \"camera\"\n\
             device = \"{}\"\nwidth = 64\nheight = 64\n\n[[nodes]]\nname = \"screen\"\n\
             driver = \"display\"\ndevice = \"{}\"\nwidth = 64\nheight = 64\n\n[[links]]\n\
             from = \"cam\"\nto = \"screen\"\n\n{printed}",
            desc.devices[0].name, desc.devices[1].name
        );
        let s = scenario::validate(&text, "pasted.toml")
            .unwrap_or_else(|e| panic!("{}: {e}\n{printed}", m.name));
        assert_eq!(s.soc, desc, "{}", m.name);
    }
}

#[test]
fn test_soc_unknown_name_exits_2_with_the_names() {
    let (code, _, err) = dmabuf(&["soc", "rk9999"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("rk9999") && err.contains("rk3588, imx8mp, rpi5"),
        "{err}"
    );
}
