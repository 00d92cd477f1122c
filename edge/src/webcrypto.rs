//! Ed25519 signature checks through the runtime's WebCrypto (`crypto.subtle`), which runs
//! natively inside workerd, several times faster than Ed25519 compiled to WebAssembly. Imported
//! keys are kept per `kid` for the life of the isolate.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

thread_local! {
    static KEYS: RefCell<HashMap<String, JsValue>> = RefCell::new(HashMap::new());
}

fn subtle() -> Result<JsValue, JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())?;
    Reflect::get(&crypto, &"subtle".into())
}

fn method(target: &JsValue, name: &str) -> Result<Function, JsValue> {
    Reflect::get(target, &name.into())?.dyn_into::<Function>()
}

fn ed25519() -> Result<JsValue, JsValue> {
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"Ed25519".into())?;
    Ok(algorithm.into())
}

async fn key(kid: &str, public_key: &[u8; 32]) -> Result<JsValue, JsValue> {
    if let Some(key) = KEYS.with(|keys| keys.borrow().get(kid).cloned()) {
        return Ok(key);
    }
    let subtle = subtle()?;
    let args = Array::of5(
        &"raw".into(),
        &Uint8Array::from(public_key.as_slice()),
        &ed25519()?,
        &false.into(),
        &Array::of1(&"verify".into()),
    );
    let promise: Promise = method(&subtle, "importKey")?
        .apply(&subtle, &args)?
        .dyn_into()?;
    let key = JsFuture::from(promise).await?;
    KEYS.with(|keys| keys.borrow_mut().insert(kid.to_owned(), key.clone()));
    Ok(key)
}

/// Whether `signature` is a valid Ed25519 signature of `message` under `public_key`. An error
/// means WebCrypto itself failed (not that the signature is bad).
pub async fn ed25519_verify(
    kid: &str,
    public_key: &[u8; 32],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, JsValue> {
    let key = key(kid, public_key).await?;
    let subtle = subtle()?;
    let args = Array::of4(
        &ed25519()?,
        &key,
        &Uint8Array::from(signature),
        &Uint8Array::from(message),
    );
    let promise: Promise = method(&subtle, "verify")?
        .apply(&subtle, &args)?
        .dyn_into()?;
    Ok(JsFuture::from(promise).await?.as_bool().unwrap_or(false))
}
