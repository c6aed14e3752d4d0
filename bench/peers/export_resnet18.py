"""Export torchvision's ResNet-18 (random weights, seed 0: nothing is downloaded) to ONNX with
a dynamic batch dimension, plus a Triton config, into <out>/resnet18/1/model.onnx. The FastAPI
peer (fastapi_resnet.py) builds the very same network from the same seed."""
import os
import sys

import torch
import torchvision


def build():
    torch.manual_seed(0)
    m = torchvision.models.resnet18(weights=None)
    m.eval()
    return m


def main(out):
    model_dir = os.path.join(out, "resnet18", "1")
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, "model.onnx")
    if not os.path.exists(path):
        x = torch.zeros(1, 3, 224, 224)
        torch.onnx.export(build(), x, path, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)
    with open(os.path.join(out, "resnet18", "config.pbtxt"), "w") as f:
        f.write('max_batch_size: 32\ndynamic_batching { max_queue_delay_microseconds: 2000 }\n')
    print(path)


if __name__ == "__main__":
    main(sys.argv[1])
