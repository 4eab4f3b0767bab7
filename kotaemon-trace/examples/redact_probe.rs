// Scratch probe (not committed).
use kotaemon_trace::redact::Redactor;
fn main() {
    let r = Redactor::default();
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') { continue; }
        let (tag, rest) = line.split_once('\t').unwrap();
        let (key, value) = rest.split_once('\t').unwrap_or(("note", rest));
        let value = value.replace("\\n", "\n");
        let out = r.redact(key, &value);
        let changed = out != value;
        let ok = match tag { "S" => changed, "B" => !changed, _ => true };
        println!("{} {tag} [{key}] {:?} -> {:?}", if ok { "  " } else { "XX" }, value, out);
    }
}
