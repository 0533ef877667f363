// Makes a TextStream usable with `for await`: the wasm class supplies next() and return(),
// this adds the async-iterator protocol, which wasm-bindgen cannot declare on a class.
export function asyncIterable(stream) {
    stream[Symbol.asyncIterator] = function () {
        return this;
    };
    return stream;
}
