// The precise terms behind the plain words on screen, for the "Under the hood" disclosures.

/** One plain word on screen and the precise term behind it. */
export interface Term {
  plain: string;
  term: string;
  /** What it means, in a sentence (optional). */
  explain?: string;
}

export const TRAIN_TERMS: Term[] = [
  { plain: 'Starting network', term: 'backbone', explain: 'a convolutional network (ResNet, Xception, …); with weights pretrained on ImageNet-1k (1.28 million photos, 1000 classes) when they are present' },
  { plain: 'Random start', term: "weights: 'none'", explain: 'the network starts from random weights and learns everything from your images' },
  { plain: 'Quick (last layer only)', term: 'head-only training (mode: head)', explain: 'the backbone is frozen; its features are computed once and cached, and only a new classification head is trained' },
  { plain: 'Fine-tune', term: 'mode: finetune', explain: 'head first, then the backbone’s last stage is unfrozen and trained with a lower learning rate' },
  { plain: 'Full', term: 'mode: full', explain: 'every layer is trained' },
  { plain: 'Held back to check the model', term: 'validation split (valSplit)', explain: 'a stratified share of each class, chosen by image content hash and seed; never trained on' },
];

export const SETTINGS_TERMS: Term[] = [
  { plain: 'Last layer', term: 'classification head', explain: 'linear (one dense layer + softmax) or an MLP with one hidden layer and dropout' },
  { plain: 'Balance classes', term: 'class weights (inverse class frequency)', explain: 'when the classes are imbalanced, each image’s loss is weighted by total / (classes × images of its class)' },
  { plain: 'Stop early after', term: 'early stopping patience', explain: 'epochs without a lower validation loss before a phase stops' },
  { plain: 'Variations while training', term: 'data augmentation', explain: 'random resized crops, horizontal flips and colour jitter' },
];

export const RESULTS_TERMS: Term[] = [
  { plain: 'Accuracy on held-back images', term: 'validation accuracy', explain: 'share of validation images whose top prediction is right' },
  { plain: 'Error on held-back images', term: 'validation loss', explain: 'mean cross-entropy on the validation set; lower is better' },
  { plain: 'Epoch', term: 'epoch', explain: 'one pass over the training images' },
  { plain: 'Kept model', term: 'best checkpoint (runs/<id>/best/)', explain: 'the weights of the epoch with the lowest validation loss; export and Classify use it' },
  { plain: 'Precision / recall / F1', term: 'per-class precision, recall, F1', explain: 'on the validation set; F1 is their harmonic mean' },
  { plain: 'Run name', term: 'run id', explain: 'the run’s folder under runs/ is named by its id (start time in UTC and a random tail); the name is only for display' },
];

/** The training process's warnings in plain words (the precise wording stays in the CLI's output). */
export function plainWarning(message: string): string {
  const imbalance = /^classes are imbalanced \((.*)\): the loss is weighted by inverse class frequency$/.exec(message);
  if (imbalance) return `Some classes have many more images than others (${imbalance[1]}): images of the rarer classes count more while training, so the model does not just learn to say the big class.`;
  return message;
}
