//! The loader never panics, whatever the text (the fuzz target `config` explores further).

use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = rampart_config::load_str(&text, std::path::Path::new("/p/r.toml"));
    }

    #[test]
    fn arbitrary_values_in_a_valid_shape_never_panic(
        bind in ".{0,30}", upstream in ".{0,40}", origin in ".{0,40}", dur in ".{0,12}", cidr in ".{0,24}"
    ) {
        let text = format!(
            "version = 1\n[[listener]]\nname = \"p\"\nbind = {bind:?}\nfirewall = {{ allow = [{cidr:?}] }}\n[limits]\nidle_timeout = {dur:?}\n[[cors]]\nname = \"c\"\nallow_origins = [{origin:?}]\nallow_credentials = true\n[[route]]\nname = \"r\"\nupstream = {upstream:?}\ncors = \"c\"\n"
        );
        let _ = rampart_config::load_str(&text, std::path::Path::new("/p/r.toml"));
    }
}
