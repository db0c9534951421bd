#![no_main]
// The identity of a client certificate is read from DER the TLS stack verified; a
// malformed certificate must still never panic the reader.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rampart_listen::tls::certificate_identity(data);
});
