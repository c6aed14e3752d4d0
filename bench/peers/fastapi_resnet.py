"""The Python peer: FastAPI + PyTorch eager, what a Python user writes in an afternoon.
POST /infer with the raw little-endian FP32 bytes of one [1,3,224,224] image; answers the raw
FP32 logits [1,1000]. The network is export_resnet18.py's (torchvision ResNet-18, seed 0).
Started by the bench: argv port; prints one JSON line with `url` once the model is built."""
import json
import sys

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request, Response

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from export_resnet18 import build  # noqa: E402

model = build()
app = FastAPI()


@app.post("/infer")
async def infer(request: Request):
    body = await request.body()
    x = torch.from_numpy(np.frombuffer(body, dtype=np.float32).reshape(-1, 3, 224, 224).copy())
    with torch.inference_mode():
        y = model(x)
    return Response(content=y.numpy().astype(np.float32).tobytes(), media_type="application/octet-stream")


@app.get("/health")
async def health():
    return {"ok": True}


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    print(json.dumps({"msg": "fastapi peer listening", "url": f"http://127.0.0.1:{port}", "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
