# The PyTorch peer of `refit classify-imagenet` / `refit predict` for `npm run bench:infer`:
# a plain torchvision script, as a PyTorch user would write it — PIL decode, Resize 256 + CenterCrop 224,
# ToTensor + Normalize, batches of 8, torch.inference_mode, 2 threads (the cores). The model is built
# with random weights (speed does not depend on them; Debian's torchvision ships no weight files).
# Prints one line per image as soon as its batch is done (flushed), like the CLI, so the caller can
# time the first result and the steady state.
#   /usr/bin/python3 bench/torch_classify.py resnet50 1000 FILE...
import os
import sys

import torch
import torchvision
from PIL import Image
from torchvision import transforms

arch, classes, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
torch.set_num_threads(os.cpu_count() or 1)
model = getattr(torchvision.models, arch)(num_classes=classes).eval()
tf = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])
BATCH = 8
with torch.inference_mode():
    for i in range(0, len(files), BATCH):
        chunk = files[i:i + BATCH]
        x = torch.stack([tf(Image.open(f).convert('RGB')) for f in chunk])
        p = torch.softmax(model(x), 1)
        top = p.topk(min(5, classes), 1)
        out = []
        for f, v, k in zip(chunk, top.values.tolist(), top.indices.tolist()):
            out.append(f + '\n' + ''.join(f'  {100 * a:5.1f}%  {b}\n' for a, b in zip(v, k)))
        sys.stdout.write(''.join(out))
        sys.stdout.flush()
