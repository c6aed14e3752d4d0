/**
 * Triton config.pbtxt texts that more than one test writes or parses.
 */

/**
 * NVIDIA's older densenet_onnx config (the quickstart's before it batched): no batching, the
 * model's [1,3,224,224] / [1,1000,1,1] given as `reshape` of the client's dims, and a
 * label_filename. `name` is the model's name in the repository (the text is otherwise fixed).
 */
export function densenetUnbatchedConfig(name = 'densenet_onnx'): string {
  return `name: "${name}"
platform: "onnxruntime_onnx"
max_batch_size : 0
input [
  {
    name: "data_0"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
    reshape { shape: [ 1, 3, 224, 224 ] }
  }
]
output [
  {
    name: "fc6_1"
    data_type: TYPE_FP32
    dims: [ 1000 ]
    reshape { shape: [ 1, 1000, 1, 1 ] }
    label_filename: "densenet_labels.txt"
  }
]
`;
}
