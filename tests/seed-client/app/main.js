// Ours, not the seed's: mounts the seed's entry component Chat.vue, extracted beside this file.
import { createApp } from 'vue';
import Chat from './Chat.vue';

createApp(Chat).mount('#app');
