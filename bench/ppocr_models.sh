# The PP-OCR models the benchmarks quantize, sourced by bench/*.sh (scripts/fetch_models.sh puts
# them in .cache/models): file, input shape, PaddleOCR's preprocessing (det: ImageNet's mean and
# std; rec and cls map [0, 1] to [-1, 1]), the same as `image:` spec keys, and a label for tables.
declare -A FILE SHAPE SIZE MEAN STD PREPROCESS LABEL
FILE[det]=ch_PP-OCRv4_det_infer.onnx; SHAPE[det]=1,3,640,640; SIZE[det]=640x640
FILE[rec]=ch_PP-OCRv4_rec_infer.onnx; SHAPE[rec]=1,3,48,320; SIZE[rec]=320x48
FILE[cls]=ch_ppocr_mobile_v2.0_cls_infer.onnx; SHAPE[cls]=1,3,48,192; SIZE[cls]=192x48
MEAN[det]=0.485,0.456,0.406; STD[det]=0.229,0.224,0.225
MEAN[rec]=0.5; STD[rec]=0.5
MEAN[cls]=0.5; STD[cls]=0.5
LABEL[det]="det 640x640"; LABEL[rec]="rec 48x320"; LABEL[cls]="cls 48x192"
for model in det rec cls; do
  PREPROCESS[$model]="size=${SIZE[$model]}&mean=${MEAN[$model]}&std=${STD[$model]}"
done
