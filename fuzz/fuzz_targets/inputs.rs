//! The action's inputs: each line `NAME=VALUE` becomes `INPUT_NAME`, and every command's
//! request is parsed from them. Nothing panics; a refusal names an input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_oci::context::Env;
use wasm_oci::input;
use wasm_oci::inputs::Inputs;
use wasm_oci::pull::PullRequest;
use wasm_oci::push::PushRequest;
use wasm_oci::request::ReadRequest;
use wasm_oci::verify::VerifyRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut env = Env::new();
    for line in text.lines() {
        if let Some((name, value)) = line.split_once('=') {
            env.insert(format!("INPUT_{}", name.to_uppercase()), value.to_owned());
        }
    }
    let inputs = Inputs::from_action_env(&env);
    let _ = inputs.flag(input::DRY_RUN);
    let _ = inputs.secrets();
    let _ = PushRequest::from_inputs(&inputs, &env);
    let _ = PullRequest::from_inputs(&inputs, &env);
    let _ = VerifyRequest::from_inputs(&inputs, &env, None);
    let _ = ReadRequest::from_inputs(&inputs, &env);
});
