/work/main/tests/model/target/release/libliveness_model.rlib: /work/main/tests/model/src/../../../src/liveness/protocol.rs /work/main/tests/model/src/lib.rs
