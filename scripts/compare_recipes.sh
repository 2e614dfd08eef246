#!/usr/bin/env bash
# Compare training recipes against the source confound of the shared NIH sample (docs/honest-models.md).
#
# Every recipe trains the same small proxy (ResNet-18, 128 px, from scratch) on the same
# source-stratified patient split, and is scored on the validation patients of the less
# selected draw (reproduce-chexnet-starter). Usage:  [SEED=1] scripts/compare_recipes.sh OUT_DIR [RECIPE...]
# (SEED changes initialisation and data order, never the split.)
set -euo pipefail
out=${1:?usage: compare_recipes.sh OUT_DIR [RECIPE...]}; shift
recipes=("$@"); [ ${#recipes[@]} -eq 0 ] && recipes=(pooled select mask group labels)
seed=${SEED:-0}
sources=../shared/data/nih/sources.csv
starter='{column: source, value: reproduce-chexnet-starter}'
common=(--config configs/nih-demo.yaml --set model.architecture=resnet18 --set model.input_size=128
        --set "data.metadata=[$sources]" --set data.stratify=source --set trainer.max_epochs=8 --set seed=$seed
        --set trainer.early_stop_patience=3 --set trainer.max_time_minutes=20 --set select.bootstrap=1000
        --set 'select.groups=[view, sex, age]' --set data.select_on=null --set 'data.mask_labels=[]'
        --set 'data.sampler={kind: none}')   # the base config's own recipe switched off: each recipe says all it uses
for recipe in "${recipes[@]}"; do
  case $recipe in
    pooled) extra=() ;;                                             # select and stop on the pooled split
    select) extra=(--set "data.select_on=$starter") ;;              # select and stop on the starter draw
    mask)   extra=(--set "data.select_on=$starter"                  # + confounded labels unknown in the selected draw
                   --set 'data.mask_labels=[{column: source, value: pneumonia-or-no-finding-selection, labels: all, keep: [Pneumonia]}]') ;;
    group)  extra=(--set "data.select_on=$starter" --set 'data.sampler={kind: group, column: source}') ;;
    labels) extra=(--set "data.select_on=$starter" --set 'data.sampler={kind: labels}') ;;
    *) echo "unknown recipe $recipe" >&2; exit 2 ;;
  esac
  run=$recipe; [ "$seed" != 0 ] && run=$recipe-s$seed
  cxr train "${common[@]}" "${extra[@]}" --set "name=resnet18.recipe-$run" --set "output_dir=$out/$run" \
      --set "weights_out=$out/$run/resnet18.recipe-$run.safetensors" -v > "$out/$run.log" 2>&1
  echo "$run done"
done
