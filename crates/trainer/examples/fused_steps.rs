//! Times training epochs of the fused step alone (no data loading, no validation) on a
//! TSV file: `cargo run --release -p distill-trainer --example fused_steps -- FILE [E H
//! [EPOCHS [REPEATS]]]`. On a busy machine, REPEATS > 1 reruns the same epochs from the same
//! start and also reports the sum over steps of each step's fastest time, an estimate of the
//! epoch on a quiet machine.

use std::time::Instant;

use candle_core::Device;
use distill_data::{Batcher, Dataset, LabelSet, Normalizer, Tokenization, VocabBuilder};
use distill_student::{BiLstmClassifier, StudentConfig, StudentPreset};
use distill_trainer::fused::{FusedTrainer, StepBatch};
use distill_trainer::optim::AdamConfig;
use distill_trainer::Loss;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).map_or("assets/sst2/train.tsv", String::as_str);
    let arg = |i: usize, d: usize| args.get(i).map_or(d, |a| a.parse().expect("a number"));
    let (e, h, epochs, repeats) = (arg(2, 16), arg(3, 8), arg(4, 3), arg(5, 1));
    let data = Dataset::read(path.as_ref(), &LabelSet::binary()).expect("a labelled TSV file");
    let tok = Tokenization::Words(Normalizer::new(true));
    let tokens: Vec<Vec<String>> = data.examples.iter().map(|x| tok.tokens(&x.text)).collect();
    let vocab = VocabBuilder::default().build(tokens.iter().map(Vec::as_slice));
    let n = tokens.len() * 4 / 5;
    let ids: Vec<Vec<u32>> = tokens[..n].iter().map(|t| vocab.encode(t)).collect();
    let labels: Vec<Option<u32>> = data.examples[..n].iter().map(|x| x.label).collect();
    let preset = StudentPreset {
        name: "bench".into(),
        embedding_dim: e,
        hidden_size: h,
        num_layers: 1,
        dropout: 0.5,
    };
    let config = StudentConfig::new(&preset, vocab.len(), 2);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let tensors = BiLstmClassifier::init_tensors(&config, &mut rng, &Device::Cpu).unwrap();
    println!("{n} sentences, vocabulary {}, {e}/{h}", vocab.len());
    // Fastest time of each step of each epoch, over the repeats.
    let mut fastest: Vec<Vec<f64>> = vec![Vec::new(); epochs];
    for _ in 0..repeats {
        let mut trainer = FusedTrainer::new(&config, &tensors, AdamConfig::default()).unwrap();
        for (epoch, fastest) in fastest.iter_mut().enumerate() {
            let batches = Batcher::new(32).shuffle(true).seed(1).batches(&ids, epoch);
            fastest.resize(batches.len(), f64::INFINITY);
            let mut drop = ChaCha8Rng::seed_from_u64(epoch as u64);
            let (started, mut total) = (Instant::now(), 0.0);
            // On a rayon worker, so that the step's joins are cheap (as in training).
            rayon::scope(|_| {
                for (b, best) in batches.iter().zip(fastest.iter_mut()) {
                    let labels = b.gather(&labels);
                    let batch = StepBatch {
                        ids: &b.ids,
                        lengths: &b.lengths,
                        time: b.time,
                        pair: false,
                        labels: &labels,
                        teacher: None,
                    };
                    let t = Instant::now();
                    total += trainer.step(&Loss::Ce, &batch, Some(&mut drop)).unwrap();
                    *best = best.min(t.elapsed().as_secs_f64());
                }
            });
            trainer.sync().unwrap();
            println!(
                "epoch {epoch}: {:.3} s, loss {:.4}",
                started.elapsed().as_secs_f64(),
                total / batches.len() as f64
            );
        }
    }
    if repeats > 1 {
        for (epoch, f) in fastest.iter().enumerate() {
            println!(
                "epoch {epoch}: sum of fastest steps {:.3} s",
                f.iter().sum::<f64>()
            );
        }
    }
}
