//! Compile-time behaviour: every diagnostic of the attribute (checked against the `.stderr` files next
//! to each case) and a crate of every supported shape that must build with warnings denied.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/fail/*.rs");
    cases.pass("ui/pass/*.rs");
}
