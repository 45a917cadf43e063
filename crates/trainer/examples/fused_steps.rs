//! Times training epochs of the fused step alone (no data loading, no validation) on a
//! TSV file: `cargo run --release -p distill-trainer --example fused_steps -- FILE [E H [EPOCHS]]`.

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
    let arg = |i: usize, d: usize| args.get(i).map_or(d, |a| a.parse().unwrap());
    let (e, h, epochs) = (arg(2, 16), arg(3, 8), arg(4, 3));
    let data = Dataset::read(path.as_ref(), &LabelSet::binary()).unwrap();
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
    let mut trainer = FusedTrainer::new(&config, &tensors, AdamConfig::default()).unwrap();
    println!("{n} sentences, vocabulary {}, {e}/{h}", vocab.len());
    for epoch in 0..epochs {
        let batches = Batcher::new(32).shuffle(true).seed(1).batches(&ids, epoch);
        let mut drop = ChaCha8Rng::seed_from_u64(epoch as u64);
        let started = Instant::now();
        let mut total = 0.0;
        for b in &batches {
            let labels = b.gather(&labels);
            let batch = StepBatch {
                ids: &b.ids,
                lengths: &b.lengths,
                time: b.time,
                pair: false,
                labels: &labels,
                teacher: None,
            };
            total += trainer.step(&Loss::Ce, &batch, Some(&mut drop)).unwrap();
        }
        trainer.sync();
        println!(
            "epoch {epoch}: {:.3} s, loss {:.4}",
            started.elapsed().as_secs_f64(),
            total / batches.len() as f64
        );
    }
}
