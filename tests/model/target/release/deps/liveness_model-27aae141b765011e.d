/work/main/tests/model/target/release/deps/liveness_model-27aae141b765011e.d: src/lib.rs src/../../../src/liveness/protocol.rs

/work/main/tests/model/target/release/deps/libliveness_model-27aae141b765011e.rlib: src/lib.rs src/../../../src/liveness/protocol.rs

/work/main/tests/model/target/release/deps/libliveness_model-27aae141b765011e.rmeta: src/lib.rs src/../../../src/liveness/protocol.rs

src/lib.rs:
src/../../../src/liveness/protocol.rs:
